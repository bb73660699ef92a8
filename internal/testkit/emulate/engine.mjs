// The local Step Functions engine: runs the real ASL definitions with
// aws-local-stepfunctions and hands every Task state to the Go hub, which
// plays the AWS services (ECS, the HTTP task with its connection, S3, SQS,
// Step Functions itself). Started by internal/testkit/emulate; not meant to be run
// by hand.
//
// Protocol (JSON over HTTP on 127.0.0.1):
//   stdout, first line: {"port": N}
//   POST /start {arn, definition, input, context, waitMs, waitStates, retryMs} -> 202; when the
//        run ends the engine POSTs {arn, status, output | error, cause, events} to
//        $HUB_URL/engine/done
//   POST /stop  {arn} -> 200 (aborts a running execution)
//   Task states: POST $HUB_URL/engine/task {executionArn, state, resource, input}
//        -> {output} or {error, cause}; an error is thrown with that name, so the
//        definition's Retry and Catch match it as they would in AWS.
import http from 'node:http';
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

const hub = process.env.HUB_URL;

// States.StringSplit as AWS documents it: the second argument is a set of
// delimiter characters, each one splitting ("This.is+a,test=string" split
// on ".+,=" gives five strings), and no empty string is returned (a run of
// delimiters, or one at either end, yields none; as measured against AWS by
// localstack's and ministack's snapshot tests). aws-local-stepfunctions
// 3.0.0 calls JavaScript's split with the whole argument as one separator,
// so the library's function is replaced as it is loaded; if its text ever
// changes, the engine refuses to start rather than run the old behaviour.
function awsStringSplit(str, delimiters) {
  const set = new Set(delimiters);
  const out = [];
  let cur = '';
  for (const ch of str) {
    if (set.has(ch)) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}
const sfnURL = pathToFileURL(process.env.SFN_MODULE).href;
const splitBody = 'execute(str, separator) {\n    return str.split(separator);\n  }';
registerHooks({
  load(url, context, nextLoad) {
    const r = nextLoad(url, context);
    if (url !== sfnURL) return r;
    const src = String(r.source);
    if (src.split(splitBody).length !== 2) {
      throw new Error(`engine: ${url}: States.StringSplit is not the function this engine patches; check it against AWS's documentation`);
    }
    const fn = awsStringSplit.toString().replace('function awsStringSplit(str, delimiters)', 'execute(str, delimiters)');
    return { ...r, source: src.replace(splitBody, fn) };
  },
});
const { StateMachine, ExecutionAbortedError, ExecutionTimeoutError } = await import(
  pathToFileURL(process.env.SFN_MODULE).href
);
const running = new Map();

// HubError is a failed exchange with the hub: the request did not get
// through, or its answer is not one. It is the emulator's failure, not
// the task's, so the execution fails with it as with States.Runtime: it is
// not retried (the hub may have run the task, and /engine/task is not
// idempotent) nor caught (a Catch would run the definition's error paths,
// e.g. parse "fetch failed" as the stopped ECS task a States.TaskFailed
// carries, on a failure AWS never reports).
class HubError extends Error {
  constructor(message, cause) {
    super(message, { cause });
    this.name = 'Emulate.HubError';
  }
  get isRetryable() {
    return false;
  }
  get isCatchable() {
    return false;
  }
}

// describe returns err's message followed by its causes' codes and
// messages: fetch's TypeError says only "fetch failed", and undici keeps
// why (ECONNRESET, UND_ERR_SOCKET "other side closed", a timeout) in
// err.cause.
function describe(err) {
  let s = String(err?.message ?? err);
  for (let c = err?.cause, n = 0; c && n < 4; c = c.cause, n++) {
    s += ': ' + [c.code, c.message ?? String(c)].filter(Boolean).join(' ');
  }
  return s;
}

async function post(path, body) {
  let res, text;
  try {
    res = await fetch(hub + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    text = await res.text();
  } catch (err) {
    const e = new HubError(`hub ${path}: ${describe(err)}`, err);
    process.stderr.write(`engine: ${new Date().toISOString()} ${e.message}\n`);
    throw e;
  }
  if (!res.ok) throw new HubError(`hub ${path}: HTTP ${res.status}: ${text}`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HubError(`hub ${path}: answer is not JSON: ${err.message}`, err);
  }
}

// allStates returns every state of a definition as [name, state] pairs,
// the states of Map (ItemProcessor, Iterator) and Parallel (Branches)
// states included: the library looks its overrides up by state name in
// the inner machines too, and names are unique across a definition.
function allStates(definition) {
  const out = [];
  const walk = (states) => {
    for (const [name, def] of Object.entries(states ?? {})) {
      out.push([name, def]);
      for (const inner of [def.ItemProcessor, def.Iterator, ...(def.Branches ?? [])]) {
        if (inner) walk(inner.States);
      }
    }
  };
  walk(definition.States);
  return out;
}

function taskHandlers(arn, definition) {
  const handlers = {};
  for (const [state, def] of allStates(definition)) {
    if (def.Type !== 'Task') continue;
    handlers[state] = async (input) => {
      const reply = await post('/engine/task', { executionArn: arn, state, resource: def.Resource, input });
      if (reply.error) {
        const err = new Error(reply.cause ?? '');
        err.name = reply.error;
        throw err;
      }
      return reply.output ?? null;
    };
  }
  return handlers;
}

// overrides maps every state that passes the test to ms milliseconds (Wait
// durations, retry intervals), or to nothing when ms is not set.
function overrides(definition, test, ms) {
  const out = {};
  if (ms === undefined || ms === null) return out;
  for (const [state, def] of allStates(definition)) {
    if (test(def)) out[state] = ms;
  }
  return out;
}

// machineFor returns the StateMachine of definition, validated once: the
// library validates a definition (asl-validator) in its constructor, which
// costs a few hundred milliseconds for ours, and a StateMachine runs any
// number of executions. The key is taken before the library sees the
// definition: its constructor changes it (every state gets a
// QueryLanguage), so the same object would not find its machine again.
const machines = new Map();
function machineFor(definition) {
  const key = JSON.stringify(definition);
  let sm = machines.get(key);
  if (!sm) {
    sm = new StateMachine(definition, { validationOptions: { checkPaths: true } });
    machines.set(key, sm);
  }
  return sm;
}

async function start(sm, { arn, definition, input, context, waitMs, waitStates, retryMs }) {
  const execution = sm.run(input, {
    context,
    overrides: {
      taskResourceLocalHandlers: taskHandlers(arn, definition),
      // waitStates (state name -> ms) overrides waitMs for the states it names.
      waitTimeOverrides: { ...overrides(definition, (d) => d.Type === 'Wait', waitMs), ...(waitStates ?? {}) },
      retryIntervalOverrides: overrides(definition, (d) => Boolean(d.Retry), retryMs),
    },
  });
  running.set(arn, execution);
  const events = [];
  const collect = (async () => {
    for await (const e of execution.eventLogs) events.push(e);
  })();
  let done;
  try {
    const output = await execution.result;
    done = { arn, status: 'SUCCEEDED', output };
  } catch (err) {
    if (err instanceof ExecutionAbortedError) {
      done = { arn, status: 'ABORTED', error: 'States.Aborted', cause: 'the execution was stopped' };
    } else if (err instanceof ExecutionTimeoutError) {
      done = { arn, status: 'TIMED_OUT', error: 'States.Timeout', cause: 'the execution timed out' };
    } else {
      const c = err.cause ?? err;
      done = { arn, status: 'FAILED', error: c.name ?? 'Error', cause: c.message ?? String(c) };
    }
  }
  await collect.catch(() => {});
  running.delete(arn);
  done.events = events;
  await post('/engine/done', done);
}

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(body || '{}');
    } catch (e) {
      res.writeHead(400).end(String(e));
      return;
    }
    if (req.method === 'POST' && req.url === '/start') {
      let sm;
      try {
        // Validate synchronously so a bad definition is reported to the caller.
        sm = machineFor(msg.definition);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e.message ?? e) }));
        return;
      }
      start(sm, msg).catch((e) => {
        process.stderr.write(`engine: execution ${msg.arn}: ${describe(e)}\n${e.stack ?? ''}\n`);
        post('/engine/done', { arn: msg.arn, status: 'FAILED', error: 'States.Runtime', cause: describe(e), events: [] }).catch((e2) => {
          process.stderr.write(`engine: execution ${msg.arn}: ${describe(e2)}\n`);
        });
      });
      res.writeHead(202).end('{}');
    } else if (req.method === 'POST' && req.url === '/stop') {
      running.get(msg.arn)?.abort();
      res.writeHead(200).end('{}');
    } else {
      res.writeHead(404).end('not found');
    }
  });
});
// Idle keep-alive connections stay open longer than the Go client keeps
// them (ENGINE_KEEPALIVE_MS, set by engine.go), so the client always closes
// first: a server closing an idle connection can race the client's next
// request on it, which then fails with "connection reset by peer". Node's
// default (5 s) is shorter than Go's (90 s).
server.keepAliveTimeout = Number(process.env.ENGINE_KEEPALIVE_MS) || 60000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
