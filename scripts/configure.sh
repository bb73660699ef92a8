#!/usr/bin/env bash
# Set one environment's configuration for benchling-webhook: the values the
# worker's addon stack reads from SSM Parameter Store at deploy time
# (addons/addons.parameters.yml, /benchling-webhook/<env>/<name>), and the
# Benchling app's client secret in Secrets Manager
# (benchling-webhook/<env>/benchling/client_secret).
#
# The client secret is read from stdin, or prompted for without echo when stdin
# is a terminal; it never appears on a command line, in the output or in a file.
#
# docs/deploy.md ("Configuration and the client secret") says where each value
# comes from. Run `copilot job deploy --name worker --env <env>` afterwards:
# CloudFormation reads these values only when it deploys ("Changing a setting
# later" there: a rotated secret reaches a deployed stack another way).

set -euo pipefail

readonly PARAMETERS="bucket-name package-prefix packager-queue-name benchling-tenant app-definition-id client-id catalog-host allowed-ips alarm-topic-arn jwks-url quilt-workflow"

usage() {
	cat <<'EOF'
Usage: scripts/configure.sh <env> [options]

Writes /<app>/<env>/<name> in SSM Parameter Store (String, overwritten) for each
value given, and creates or updates the Secrets Manager secret
<app>/<env>/benchling/client_secret from stdin or a prompt.

Values (each optional on a later run; the first run needs them all):
  --bucket NAME               Quilt bucket for the packages (same region)      bucket-name
  --prefix PREFIX             package name prefix, no slash (e.g. benchling)   package-prefix
  --queue NAME|URL|ARN        the Quilt stack's PackagerQueue (its name is     packager-queue-name
                              stored; URL and ARN are reduced to it)
  --tenant NAME               Benchling tenant: acme for acme.benchling.com    benchling-tenant
  --app-definition-id ID      the app's definition id (appdef_...)             app-definition-id
  --client-id ID              the app's OAuth client id                        client-id
  --catalog-host HOST         Quilt catalog host (catalog.example.com)         catalog-host
  --allowed-ips any|LIST      "any", or comma-separated IPs/CIDRs allowed      allowed-ips
                              to call the webhook API
  --alarm-topic ARN|none      SNS topic the alarms notify, or "none"           alarm-topic-arn
  --jwks-url URL              the key set webhooks are verified against;       jwks-url
                              "{appDefinitionId}" is replaced by the app
                              definition id. Default (written when the
                              parameter does not exist yet): Benchling's
                              current URL, below. Legacy apps and GxP tenants
                              use another (docs/deploy.md, "The JWKS URL")
  --quilt-workflow NAME|none  the Quilt workflow the packages are pushed with  quilt-workflow
                              (checked against the bucket's
                              .quilt/workflows/config.yml), or "none"

Secret:
  (default)                   read the client secret: first line of stdin, or
                              a prompt (no echo) when stdin is a terminal
  --no-secret                 leave the secret as it is

Other:
  --app NAME                  Copilot application (default benchling-webhook)
  --region REGION             AWS region (default: AWS_REGION / your profile's)
  --profile PROFILE           AWS CLI profile
  --dry-run                   print the AWS CLI commands instead of running them
                              (the secret is not read)
  -h, --help                  this text

Benchling's current JWKS URL (the default of --jwks-url):
  https://apps.benchling.com/api/v1/apps/{appDefinitionId}/jwks

Examples:
  scripts/configure.sh dev --bucket quilt-example --prefix benchling \
    --queue quilt-example-PackagerQueue-abc123 --tenant acme \
    --app-definition-id appdef_abc123 --client-id 8f1c... \
    --catalog-host catalog.example.com --allowed-ips any --alarm-topic none \
    --quilt-workflow none
  pass show benchling/client-secret | scripts/configure.sh prod --allowed-ips 203.0.113.0/24
  scripts/configure.sh dev --catalog-host new.example.com --no-secret
EOF
}

die() {
	printf 'configure.sh: %s\n' "$*" >&2
	exit 2
}

note() {
	printf '%s\n' "$*" >&2
}

# --- arguments -----------------------------------------------------------------

app="benchling-webhook"
env_name=""
bucket="" prefix="" queue="" tenant="" app_definition_id="" client_id="" catalog_host="" allowed_ips="" alarm_topic="" quilt_workflow=""
jwks_url=""
# job verify's default (webhook.DefaultJWKSURL; internal/deploytest/deploycheck
# checks that the two agree).
readonly DEFAULT_JWKS_URL='https://apps.benchling.com/api/v1/apps/{appDefinitionId}/jwks'
set_secret=true
dry_run=false
aws_opts=()
region_opt=""

need_value() { # flag value
	[[ $# -ge 2 && -n "$2" && "$2" != -* ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
	arg="$1"
	value=""
	has_inline=false
	if [[ "$arg" == --*=* ]]; then
		value="${arg#*=}"
		arg="${arg%%=*}"
		has_inline=true
	fi
	case "$arg" in
	-h | --help)
		usage
		exit 0
		;;
	--dry-run) dry_run=true ;;
	--no-secret) set_secret=false ;;
	--client-secret | --secret)
		die "$arg: the client secret is never taken from the command line; pipe it to stdin or answer the prompt"
		;;
	--bucket | --prefix | --queue | --tenant | --app-definition-id | --client-id | --catalog-host | --allowed-ips | --alarm-topic | --jwks-url | --quilt-workflow | --app | --region | --profile)
		if ! $has_inline; then
			need_value "$arg" "${2:-}"
			value="$2"
			shift
		fi
		[[ -n "$value" ]] || die "$arg needs a value (see --help)"
		case "$arg" in
		--bucket) bucket="$value" ;;
		--prefix) prefix="$value" ;;
		--queue) queue="$value" ;;
		--tenant) tenant="$value" ;;
		--app-definition-id) app_definition_id="$value" ;;
		--client-id) client_id="$value" ;;
		--catalog-host) catalog_host="$value" ;;
		--allowed-ips) allowed_ips="$value" ;;
		--alarm-topic) alarm_topic="$value" ;;
		--jwks-url) jwks_url="$value" ;;
		--quilt-workflow) quilt_workflow="$value" ;;
		--app) app="$value" ;;
		--region)
			aws_opts+=(--region "$value")
			region_opt="$value"
			;;
		--profile) aws_opts+=(--profile "$value") ;;
		esac
		;;
	-*) die "unknown option $arg (see --help)" ;;
	*)
		[[ -z "$env_name" ]] || die "one environment at a time (got $env_name and $arg)"
		env_name="$arg"
		;;
	esac
	shift
done

[[ -n "$env_name" ]] || {
	usage >&2
	exit 2
}

# --- validation ----------------------------------------------------------------

# Copilot's rule for application and environment names.
[[ "$app" =~ ^[a-z][a-z0-9-]*$ ]] || die "--app $app: lower-case letters, digits and dashes, starting with a letter"
[[ "$env_name" =~ ^[a-z][a-z0-9-]*$ ]] || die "environment $env_name: lower-case letters, digits and dashes, starting with a letter (e.g. dev, prod)"

if [[ -n "$bucket" ]]; then
	[[ "$bucket" != s3://* ]] || die "--bucket: the bucket name only, without s3://"
	[[ "$bucket" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ && "$bucket" != *..* ]] ||
		die "--bucket $bucket: not an S3 bucket name (3-63 lower-case letters, digits, dots and dashes)"
fi

if [[ -n "$prefix" ]]; then
	[[ "$prefix" != */* ]] || die "--prefix $prefix: no slash; packages are named <prefix>/<entry id>"
	# One part of a Quilt package name (quilt3's PACKAGE_NAME_FORMAT is
	# ^[\w-]+/[\w-]+$; quiltpkg.CheckPackagePrefix): no dots either.
	[[ "$prefix" =~ ^[A-Za-z0-9_-]+$ ]] ||
		die "--prefix $prefix: letters, digits, dashes and underscores only (one part of a Quilt package name)"
fi

if [[ -n "$queue" ]]; then
	case "$queue" in
	https://*) queue="${queue%/}" && queue="${queue##*/}" ;; # https://sqs.<region>.amazonaws.com/<account>/<name>
	arn:*:sqs:*) queue="${queue##*:}" ;;                     # arn:aws:sqs:<region>:<account>:<name>
	esac
	[[ "$queue" != *.fifo ]] || die "--queue $queue: a FIFO queue; Quilt's PackagerQueue is a standard queue"
	[[ "$queue" =~ ^[A-Za-z0-9_-]{1,80}$ ]] || die "--queue $queue: not an SQS queue name"
fi

if [[ -n "$tenant" ]]; then
	[[ "$tenant" != *.* && "$tenant" != */* ]] || die "--tenant $tenant: the tenant name only (acme for https://acme.benchling.com)"
	[[ "$tenant" =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || die "--tenant $tenant: lower-case letters, digits and dashes"
fi

if [[ -n "$app_definition_id" ]]; then
	[[ "$app_definition_id" =~ ^appdef_[A-Za-z0-9_-]+$ ]] ||
		die "--app-definition-id $app_definition_id: expected appdef_... (the app definition, not the app_... install id)"
fi

if [[ -n "$client_id" ]]; then
	[[ "$client_id" =~ ^[^[:space:],]{1,256}$ ]] || die "--client-id: no spaces or commas"
fi

if [[ -n "$catalog_host" ]]; then
	[[ "$catalog_host" != *://* && "$catalog_host" != */* ]] || die "--catalog-host $catalog_host: the host only, without https:// or a path"
	[[ "$catalog_host" =~ ^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+(:[0-9]{1,5})?$ ]] ||
		die "--catalog-host $catalog_host: not a host name"
fi

valid_ipv4() { # address[/prefix]
	local octet='(0|[1-9][0-9]{0,2})'
	local re="^${octet}\\.${octet}\\.${octet}\\.${octet}(/([0-9]{1,2}))?\$"
	[[ "$1" =~ $re ]] || return 1
	local i
	for i in 1 2 3 4; do
		((10#${BASH_REMATCH[i]} <= 255)) || return 1
	done
	[[ -z "${BASH_REMATCH[6]}" ]] || ((10#${BASH_REMATCH[6]} <= 32))
}

valid_ipv6() { # address[/prefix]
	local re='^([0-9A-Fa-f:.]+)(/([0-9]{1,3}))?$'
	[[ "$1" =~ $re && "${BASH_REMATCH[1]}" == *:* ]] || return 1
	[[ -z "${BASH_REMATCH[3]}" ]] || ((10#${BASH_REMATCH[3]} <= 128))
}

if [[ -n "$allowed_ips" && "$allowed_ips" != "any" ]]; then
	[[ "$allowed_ips" != *[[:space:]]* ]] || die "--allowed-ips: no spaces (203.0.113.4,198.51.100.0/24)"
	IFS=, read -r -a items <<<"$allowed_ips"
	[[ "${allowed_ips: -1}" != "," && "${#items[@]}" -gt 0 ]] || die "--allowed-ips $allowed_ips: an empty item"
	for item in "${items[@]}"; do
		[[ -n "$item" ]] || die "--allowed-ips $allowed_ips: an empty item"
		valid_ipv4 "$item" || valid_ipv6 "$item" || die "--allowed-ips: $item is not an IP address or CIDR"
	done
fi

if [[ -n "$alarm_topic" && "$alarm_topic" != "none" ]]; then
	[[ "$alarm_topic" =~ ^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$ ]] ||
		die "--alarm-topic $alarm_topic: an SNS topic ARN, or none"
fi

if [[ -n "$jwks_url" ]]; then
	# An absolute https URL without spaces or quotes (job verify also takes
	# http, for tests only).
	[[ "$jwks_url" =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^[:space:]\"\']*)?$ ]] ||
		die "--jwks-url $jwks_url: an https:// URL (e.g. $DEFAULT_JWKS_URL)"
fi
if [[ -n "$quilt_workflow" && "$quilt_workflow" != "none" ]]; then
	# A workflow name in Quilt's config (its schema's propertyNames).
	[[ "$quilt_workflow" =~ ^[A-Za-z_-][A-Za-z0-9_-]{0,63}$ ]] ||
		die "--quilt-workflow $quilt_workflow: a Quilt workflow name (letters, digits, _ and -, not starting with a digit, at most 64), or none"
fi

# --- running AWS CLI commands ----------------------------------------------------

shell_quote() { # an argument as a shell word, quoted only when needed
	if [[ "$1" =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}

aws_cmd() { # prints or runs: aws <args>
	local cmd=(aws ${aws_opts[@]+"${aws_opts[@]}"} "$@")
	if $dry_run; then
		local word sep=""
		for word in "${cmd[@]}"; do
			printf '%s' "$sep"
			shell_quote "$word"
			sep=" "
		done
		printf '\n'
	else
		"${cmd[@]}"
	fi
}

aws_quiet() { # like aws_cmd, but a real run's answer is not shown
	if $dry_run; then
		aws_cmd "$@"
	else
		aws_cmd "$@" >/dev/null
	fi
}

aws_secret_cmd() { # runs aws <args> with the secret on stdin (file:///dev/stdin in args)
	if $dry_run; then
		printf '<client secret on stdin> | '
		aws_cmd "$@"
	else
		printf '%s' "$client_secret" | aws_cmd "$@" >/dev/null
	fi
}

secret_name="$app/$env_name/benchling/client_secret"
client_secret=""

if ! $dry_run; then
	region="${region_opt:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}"
	if [[ -z "$region" ]]; then
		region="$(aws ${aws_opts[@]+"${aws_opts[@]}"} configure get region 2>/dev/null || true)"
	fi
	[[ -n "$region" ]] || die "no AWS region: pass --region or set AWS_REGION (the Copilot environment's region)"
	account="$(aws ${aws_opts[@]+"${aws_opts[@]}"} sts get-caller-identity --query Account --output text)" ||
		die "no working AWS credentials (aws sts get-caller-identity failed)"
	note "benchling-webhook configuration: app $app, environment $env_name, account $account, region $region"
fi

if $set_secret && ! $dry_run; then
	if [[ -t 0 ]]; then
		IFS= read -r -s -p "Benchling client secret for $app/$env_name: " client_secret </dev/tty || true
		printf '\n' >&2
	else
		IFS= read -r client_secret || true
	fi
	client_secret="${client_secret%$'\r'}"
	[[ -n "$client_secret" ]] || die "empty client secret (pipe it to stdin, or pass --no-secret to leave the secret as it is)"
fi

# --- the bucket's Quilt workflow --------------------------------------------------

# Before anything is written: a bucket with .quilt/workflows/config.yml
# refuses every package whose message names no workflow (unless
# is_workflow_required: false, or a default_workflow) or one the config does
# not have, and Quilt reports nothing back. job export checks the same, and
# the metadata against the workflow's schema, at every export (docs/deploy.md,
# "Quilt workflows"); this catches a wrong setting now.

ssm_value() { # name: the stored /<app>/<env>/<name>, or nothing
	aws ${aws_opts[@]+"${aws_opts[@]}"} ssm get-parameter --name "/$app/$env_name/$1" \
		--query Parameter.Value --output text 2>/dev/null || true
}

# workflows_of reads a config.yml on stdin (block-style YAML, as Quilt's
# docs write it) and prints "required VALUE", "default NAME", "workflow
# NAME" for each workflow, or "unreadable" when workflows is not a block.
workflows_of() {
	awk '
	function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
	function unquote(s) { s = trim(s); if (s ~ /^".*"$/ || s ~ /^\047.*\047$/) s = substr(s, 2, length(s) - 2); return s }
	{
		line = $0; sub(/\r$/, "", line)
		if (line ~ /^[ \t]*(#.*)?$/ || line ~ /^(---|\.\.\.)/) next
		sub(/[ \t]+#.*$/, "", line)
		match(line, /^ */); indent = RLENGTH
		if (indent == 0) {
			in_workflows = 0
			if (line ~ /^workflows:[ \t]*$/) { in_workflows = 1; seen = 1; child = -1 }
			else if (line ~ /^workflows:/) { print "unreadable"; seen = 1 }
			else if (line ~ /^is_workflow_required:/) { sub(/^is_workflow_required:/, "", line); print "required " unquote(line) }
			else if (line ~ /^default_workflow:/) { sub(/^default_workflow:/, "", line); print "default " unquote(line) }
			next
		}
		if (in_workflows) {
			if (child < 0) child = indent
			if (indent == child) { k = line; sub(/:.*$/, "", k); print "workflow " unquote(k) }
		}
	}
	END { if (!seen) print "unreadable" }'
}

check_quilt_workflow() {
	local b="${bucket:-}" w="${quilt_workflow:-}"
	[[ -n "$b" ]] || b="$(ssm_value bucket-name)"
	[[ -n "$w" ]] || w="$(ssm_value quilt-workflow)"
	[[ -n "$w" && "$w" != "None" ]] || w="none"
	if [[ -z "$b" || "$b" == "None" ]]; then
		note "  (no bucket yet: the Quilt workflow check runs once --bucket is set)"
		return 0
	fi
	local config_url="s3://$b/.quilt/workflows/config.yml" config errs
	errs="$(mktemp)"
	if ! config="$(aws ${aws_opts[@]+"${aws_opts[@]}"} s3 cp "$config_url" - 2>"$errs")"; then
		if grep -Eq '\(404\)|NoSuchKey|Not Found|does not exist' "$errs"; then
			rm -f "$errs"
			if [[ "$w" != "none" ]]; then
				note "configure.sh: --quilt-workflow $w, but $config_url does not exist: Quilt refuses a package that names a workflow in a bucket without workflows. Use --quilt-workflow none, or add the config."
				exit 1
			fi
			note "  $config_url: none (no Quilt workflow needed)"
			return 0
		fi
		note "  warning: could not read $config_url ($(tr '\n' ' ' <"$errs")): the workflow setting is not checked now; job export checks it at every export"
		rm -f "$errs"
		return 0
	fi
	rm -f "$errs"
	local facts required=true default="" names=() unreadable=false kind value
	facts="$(printf '%s\n' "$config" | workflows_of)"
	while read -r kind value; do
		case "$kind" in
		required) [[ ! "$value" =~ ^(false|False|FALSE)$ ]] || required=false ;;
		default) default="$value" ;;
		workflow) names+=("$value") ;;
		unreadable) unreadable=true ;;
		esac
	done <<<"$facts"
	if $unreadable || [[ ${#names[@]} -eq 0 ]]; then
		note "  warning: could not read the workflows of $config_url (not block-style YAML?): job export checks the setting at every export"
		return 0
	fi
	local effective="$w" list
	[[ "$effective" != "none" ]] || effective="$default"
	list="$(printf '%s, ' "${names[@]}")" && list="${list%, }"
	if [[ -z "$effective" ]]; then
		if $required; then
			note "configure.sh: $config_url requires a workflow (is_workflow_required is true unless set false) and none is configured: Quilt would refuse every package. Pass --quilt-workflow with one of: $list"
			exit 1
		fi
		note "  $config_url: workflows optional, none configured"
		return 0
	fi
	local n
	for n in "${names[@]}"; do
		if [[ "$n" == "$effective" ]]; then
			note "  $config_url: workflow $effective is there (job export checks each package's metadata against its schema)"
			return 0
		fi
	done
	if [[ "$w" == "none" ]]; then
		note "configure.sh: $config_url names default_workflow $effective, which it does not define: Quilt would refuse every package. Pass --quilt-workflow with one of: $list"
	else
		note "configure.sh: --quilt-workflow $w is not a workflow of $config_url (it has: $list): Quilt would refuse every package"
	fi
	exit 1
}

if $dry_run; then
	[[ -z "$bucket" ]] || aws_cmd s3 cp "s3://$bucket/.quilt/workflows/config.yml" -
else
	check_quilt_workflow
fi

# --- SSM parameters --------------------------------------------------------------

# AWS CLI v2 stores a URL value as given (v1 fetched it: cli_follow_urlparam).
put_parameter() { # name value description
	[[ -n "$2" ]] || return 0
	aws_quiet ssm put-parameter --name "/$app/$env_name/$1" --type String --overwrite \
		--description "$app $env_name: $3 (scripts/configure.sh)" --value "$2"
	$dry_run || note "  /$app/$env_name/$1 = $2"
}

put_parameter bucket-name "$bucket" "Quilt bucket for the packages"
put_parameter package-prefix "$prefix" "package name prefix"
put_parameter packager-queue-name "$queue" "name of the Quilt stack's PackagerQueue"
put_parameter benchling-tenant "$tenant" "Benchling tenant"
put_parameter app-definition-id "$app_definition_id" "Benchling app definition id"
put_parameter client-id "$client_id" "Benchling app OAuth client id"
put_parameter catalog-host "$catalog_host" "Quilt catalog host"
put_parameter allowed-ips "$allowed_ips" "IPs/CIDRs allowed to call the webhook API, or any"
put_parameter alarm-topic-arn "$alarm_topic" "SNS topic for the alarms, or none"
put_parameter quilt-workflow "$quilt_workflow" "Quilt workflow for the packages, or none"

# The JWKS URL has a default: Benchling's current URL, written only when the
# parameter does not exist yet, so a later run keeps a legacy or GxP URL set
# before.
jwks_description="JWKS URL the webhooks are verified against"
if [[ -n "$jwks_url" ]]; then
	put_parameter jwks-url "$jwks_url" "$jwks_description"
elif $dry_run; then
	note "# if /$app/$env_name/jwks-url does not exist yet (Benchling's current JWKS URL):"
	put_parameter jwks-url "$DEFAULT_JWKS_URL" "$jwks_description"
elif ! aws_cmd ssm get-parameter --name "/$app/$env_name/jwks-url" --query Parameter.Name --output text >/dev/null 2>&1; then
	put_parameter jwks-url "$DEFAULT_JWKS_URL" "$jwks_description"
fi

# --- the client secret -----------------------------------------------------------

# Copilot's execution role may read only secrets tagged with the application and
# environment, so the secret carries both tags: the worker's manifest injects it
# into the tasks (job reconcile), and the addon stack resolves it at deploy time
# for the Benchling connection.
tags=("Key=copilot-application,Value=$app" "Key=copilot-environment,Value=$env_name")

if $set_secret; then
	if $dry_run; then
		note "# if $secret_name does not exist yet:"
		aws_secret_cmd secretsmanager create-secret --name "$secret_name" \
			--description "$app $env_name: Benchling app OAuth client secret (scripts/configure.sh)" \
			--secret-string file:///dev/stdin --tags "${tags[@]}"
		note "# otherwise (restore-secret first if it is scheduled for deletion):"
		aws_secret_cmd secretsmanager put-secret-value --secret-id "$secret_name" --secret-string file:///dev/stdin
		aws_cmd secretsmanager tag-resource --secret-id "$secret_name" --tags "${tags[@]}"
	else
		errors="$(mktemp)"
		trap 'rm -f "$errors"' EXIT
		if deleted="$(aws_cmd secretsmanager describe-secret --secret-id "$secret_name" --query DeletedDate --output text 2>"$errors")"; then
			if [[ "$deleted" != "None" && -n "$deleted" ]]; then
				note "  $secret_name was scheduled for deletion ($deleted): restoring it"
				aws_quiet secretsmanager restore-secret --secret-id "$secret_name"
			fi
			aws_secret_cmd secretsmanager put-secret-value --secret-id "$secret_name" \
				--secret-string file:///dev/stdin
			aws_cmd secretsmanager tag-resource --secret-id "$secret_name" --tags "${tags[@]}"
			note "  secret $secret_name updated"
		elif grep -q ResourceNotFoundException "$errors"; then
			aws_secret_cmd secretsmanager create-secret --name "$secret_name" \
				--description "$app $env_name: Benchling app OAuth client secret (scripts/configure.sh)" \
				--secret-string file:///dev/stdin --tags "${tags[@]}"
			note "  secret $secret_name created"
		else
			cat "$errors" >&2
			exit 1
		fi
	fi
fi

# --- is everything there? ----------------------------------------------------------

if $dry_run; then
	missing=""
	[[ -n "$bucket" ]] || missing+=" --bucket"
	[[ -n "$prefix" ]] || missing+=" --prefix"
	[[ -n "$queue" ]] || missing+=" --queue"
	[[ -n "$tenant" ]] || missing+=" --tenant"
	[[ -n "$app_definition_id" ]] || missing+=" --app-definition-id"
	[[ -n "$client_id" ]] || missing+=" --client-id"
	[[ -n "$catalog_host" ]] || missing+=" --catalog-host"
	[[ -n "$allowed_ips" ]] || missing+=" --allowed-ips"
	[[ -n "$alarm_topic" ]] || missing+=" --alarm-topic"
	[[ -n "$quilt_workflow" ]] || missing+=" --quilt-workflow"
	[[ -z "$missing" ]] || note "# not set by this run (they must already exist):$missing"
	exit 0
fi

names=()
for name in $PARAMETERS; do
	names+=("/$app/$env_name/$name")
done
missing="$(aws_cmd ssm get-parameters --names "${names[@]}" --query 'InvalidParameters' --output text)"
if [[ -n "$missing" && "$missing" != "None" ]]; then
	note "configure.sh: still missing, set them before deploying: $missing"
	exit 1
fi
if ! $set_secret && ! aws_cmd secretsmanager describe-secret --secret-id "$secret_name" --query Name --output text >/dev/null 2>&1; then
	note "configure.sh: the secret $secret_name does not exist yet: run again without --no-secret"
	exit 1
fi
note "All set. Apply with: copilot job deploy --name worker --env $env_name"
note "(on an environment already deployed, see docs/deploy.md, \"Changing a setting later\": a new client secret and allowed-ips need a step more)"
