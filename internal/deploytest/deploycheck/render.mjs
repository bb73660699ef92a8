// Renders API Gateway mapping templates with velocityjs and stand-ins for
// API Gateway's $input, $util and $context (vtl_test.go runs it).
//
// stdin: {"module": "<velocityjs ESM entry>", "jobs": [job...]}, where a job is
//   {template, body, headers: [[name, value]...], query: [...], path: [...],
//    context: {resourcePath, requestId, stage, sourceIp, requestTimeEpoch},
//    paths: {"$.x": value}}   // what $input.path returns, by JSONPath
// stdout: [{output, status, error}...]: the rendered text, the
// $context.responseOverride.status the template set (or null), and the
// error that stopped rendering (or null).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const req = JSON.parse(readFileSync(0, 'utf8'));
const velocity = await import(pathToFileURL(req.module).href);

// JMap stands in for the java.util.Map API Gateway hands the template:
// keys are case-sensitive, as sent.
class JMap {
  constructor(pairs) { this.m = new Map(pairs ?? []); }
  keySet() { return [...this.m.keys()]; }
  get(k) { return this.m.get(k); } // undefined, like Java's null: rendered as the reference itself
  containsKey(k) { return this.m.has(k); }
  size() { return this.m.size; }
  isEmpty() { return this.m.size === 0; }
}

// escapeJavaScript is Apache Commons Lang's StringEscapeUtils.escapeJavaScript,
// which $util.escapeJavaScript is: ' " \ / and the short escapes, other
// control characters and every UTF-16 unit above 0x7e as \uXXXX.
function escapeJavaScript(s) {
  s = s == null ? '' : String(s);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    switch (ch) {
      case "'": out += "\\'"; continue;
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '/': out += '\\/'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
    }
    if (c < 0x20 || c > 0x7e) out += '\\u' + c.toString(16).toUpperCase().padStart(4, '0');
    else out += ch;
  }
  return out;
}

// javaReplacement turns a java.util.regex replacement string ("\x" is a
// literal x, "$n" and "${name}" are groups) into a replace callback.
function javaReplacement(rep) {
  return (...m) => {
    const hasNamed = typeof m[m.length - 1] === 'object' && m[m.length - 1] !== null;
    const groups = hasNamed ? m[m.length - 1] : {};
    const captures = m.slice(0, hasNamed ? -3 : -2);
    let out = '';
    for (let i = 0; i < rep.length; i++) {
      const c = rep[i];
      if (c === '\\') {
        if (++i >= rep.length) throw new Error('character to be escaped is missing');
        out += rep[i];
      } else if (c === '$') {
        if (rep[i + 1] === '{') {
          const end = rep.indexOf('}', i);
          const name = rep.slice(i + 2, end);
          if (!(name in groups)) throw new Error(`no group with name {${name}}`);
          out += groups[name] ?? '';
          i = end;
        } else {
          let j = i + 1;
          while (j < rep.length && /[0-9]/.test(rep[j])) j++;
          if (j === i + 1) throw new Error('illegal group reference');
          const n = Number(rep.slice(i + 1, j));
          if (n >= captures.length) throw new Error(`no group ${n}`);
          out += captures[n] ?? '';
          i = j - 1;
        }
      } else {
        out += c;
      }
    }
    return out;
  };
}

// Java's String methods that JavaScript strings lack or have with other
// semantics (replaceAll takes a regex in Java, a literal in JavaScript).
const javaString = {
  replaceAll: (s, [re, rep]) => s.replace(new RegExp(re, 'g'), javaReplacement(String(rep))),
  replaceFirst: (s, [re, rep]) => s.replace(new RegExp(re), javaReplacement(String(rep))),
  matches: (s, [re]) => new RegExp(`^(?:${re})$`).test(s),
  contains: (s, [x]) => s.includes(String(x)),
  equals: (s, [x]) => s === x,
  equalsIgnoreCase: (s, [x]) => typeof x === 'string' && s.toLowerCase() === x.toLowerCase(),
  length: (s) => s.length,
  isEmpty: (s) => s.length === 0,
};
const customMethodHandlers = Object.entries(javaString).map(([name, fn]) => ({
  uid: 'java.lang.String.' + name,
  match: ({ property, context }) => typeof context === 'string' && property === name,
  resolve: ({ context, params }) => fn(context, params),
}));

function render(job) {
  const header = new JMap(job.headers);
  const querystring = new JMap(job.query);
  const path = new JMap(job.path);
  const responseOverride = { status: null, header: {} };
  const unsupported = (what) => { throw new Error(`stand-in: ${what} is not supported`); };
  const ctx = {
    input: {
      body: job.body,
      // API Gateway re-serializes the parsed body; the body itself is
      // JSON-equal to that.
      json: (p) => (p === '$' ? job.body : unsupported(`$input.json('${p}')`)),
      path: (p) => (job.paths && p in job.paths ? job.paths[p] : unsupported(`$input.path('${p}')`)),
      params: (name) => {
        if (name === undefined) return { header, querystring, path };
        for (const m of [path, querystring, header]) if (m.containsKey(name)) return m.get(name);
        return '';
      },
    },
    util: {
      escapeJavaScript,
      base64Encode: (s) => Buffer.from(String(s ?? ''), 'utf8').toString('base64'),
      base64Decode: (s) => Buffer.from(String(s ?? ''), 'base64').toString('utf8'),
    },
    context: { ...job.context, identity: { sourceIp: job.context.sourceIp }, responseOverride },
  };
  try {
    const output = velocity.render(job.template, ctx, {}, { env: 'development', customMethodHandlers });
    return { output, status: responseOverride.status, error: null };
  } catch (e) {
    return { output: null, status: null, error: String(e && e.stack || e) };
  }
}

process.stdout.write(JSON.stringify(req.jobs.map(render)));
