// The Node peer for the blog example (Q4), written for `make bench` in the peer's own
// style: ../shared/peer/server.mjs serves the shop only, and a figure for Q4 needs a
// Node gateway over the blog's services. Same stack and settings as that peer
// (Apollo Server 4 in production mode, `dataloader` split at 100 ids, undici
// keep-alive pool, its backend checks and error shapes, its depth and alias rules);
// only the schema and the loaders are the blog's (examples/blog/graph.py).
//
//   node blog.mjs --port 8510     (run from benchmarks/.peer, where its modules are)
//   BLOG_BASE=http://127.0.0.1:8401   comments' base URL; posts and users follow on the
//                                     next two ports (`tessera demo-backends --config
//                                     examples/blog/tessera.toml`), or three URLs.
//
// GET /posts, /posts/{id}, /posts?userId=1&userId=2; /users/{id}, /users?id=1&id=2;
// /comments?postId=1&postId=2. Serves POST/GET /graphql and GET /healthz.
import './production.mjs';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ApolloServer, HeaderMap } from '@apollo/server';
import DataLoader from 'dataloader';
import { GraphQLError, Kind } from 'graphql';
import { Agent, request } from 'undici';

const SERVICES = ['comments', 'posts', 'users'];
const PORT = Number(argValue('--port') ?? 9210);
const HOST = argValue('--host') ?? '127.0.0.1';
const BASES = backendBases(process.env.BLOG_BASE ?? 'http://127.0.0.1:8401');
const TIMEOUT_MS = Number(process.env.BACKEND_TIMEOUT_MS ?? 1000);
const MAX_BATCH = 100;
const MAX_DEPTH = 15;
const MAX_ALIASES = 30;
const MAX_TOKENS = 5000;
const MAX_BODY_BYTES = 1 << 20;
const MAX_BACKEND_BYTES = 8 << 20;
const NOT_FOUND = Symbol('not found');

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function backendBases(spec) {
  const urls = spec.split(',').map((s) => s.trim().replace(/\/$/, ''));
  if (urls.length === SERVICES.length) return Object.fromEntries(SERVICES.map((s, i) => [s, urls[i]]));
  const base = new URL(urls[0]);
  return Object.fromEntries(SERVICES.map((s, i) => [s, `${base.protocol}//${base.hostname}:${Number(base.port) + i}`]));
}

// ---------------------------------------------------------------- backends (as the peer's)

const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, pipelining: 1 });

const WHAT = {
  BACKEND_TIMEOUT: 'timed out',
  BACKEND_UNAVAILABLE: 'is unavailable',
  BACKEND_BAD_RESPONSE: 'sent an invalid response',
};

class BackendError extends GraphQLError {
  constructor(service, code, status) {
    super(`Backend service "${service}" ${WHAT[code]}.`, {
      extensions: status ? { code, service, status } : { code, service },
    });
  }
}

async function fetchJson(service, path, headers, { allow404 = false } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), TIMEOUT_MS);
  const fail = (code, status) => new BackendError(service, code, status);
  try {
    let res;
    try {
      res = await request(BASES[service] + path, { dispatcher: agent, signal: ac.signal, headers });
    } catch {
      throw fail(ac.signal.aborted ? 'BACKEND_TIMEOUT' : 'BACKEND_UNAVAILABLE');
    }
    const { statusCode: status, body } = res;
    if (status === 404 && allow404) {
      await body.dump().catch(() => {});
      return NOT_FOUND;
    }
    if (status !== 200) {
      discard(body);
      throw fail(status >= 500 ? 'BACKEND_UNAVAILABLE' : 'BACKEND_BAD_RESPONSE', status);
    }
    const type = res.headers['content-type'] ?? '';
    if (!type.includes('json') || Number(res.headers['content-length'] ?? 0) > MAX_BACKEND_BYTES) {
      discard(body);
      throw fail('BACKEND_BAD_RESPONSE');
    }
    const chunks = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > MAX_BACKEND_BYTES) {
          discard(body);
          throw fail('BACKEND_BAD_RESPONSE');
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof BackendError) throw err;
      throw fail(ac.signal.aborted ? 'BACKEND_TIMEOUT' : 'BACKEND_UNAVAILABLE');
    }
    try {
      return JSON.parse(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    } catch {
      throw fail('BACKEND_BAD_RESPONSE');
    }
  } finally {
    clearTimeout(timer);
  }
}

function discard(body) {
  body.on('error', () => {});
  body.destroy();
}

const str = (v) => (v === null || v === undefined ? null : String(v));
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Backends send ids as numbers: every id field becomes a string.
const NORMALIZE = {
  posts: (p) => ({ ...p, id: str(p.id), userId: str(p.userId) }),
  users: (u) => ({ ...u, id: str(u.id) }),
  comments: (c) => ({ ...c, id: str(c.id), postId: str(c.postId) }),
};

function entity(service, value) {
  if (!isObject(value) || value.id == null) throw new BackendError(service, 'BACKEND_BAD_RESPONSE');
  return NORMALIZE[service](value);
}

function entities(service, value) {
  if (!Array.isArray(value)) throw new BackendError(service, 'BACKEND_BAD_RESPONSE');
  return value.map((v) => entity(service, v));
}

const repeat = (param, keys) => keys.map((k) => `${param}=${encodeURIComponent(k)}`).join('&');

function makeLoaders(headers) {
  const opts = { maxBatchSize: MAX_BATCH };
  const byId = (service) =>
    new DataLoader(async (keys) => {
      if (keys.length === 1) {
        const one = await fetchJson(service, `/${service}/${encodeURIComponent(keys[0])}`, headers, { allow404: true });
        return [one === NOT_FOUND ? null : entity(service, one)];
      }
      const found = new Map();
      for (const e of entities(service, await fetchJson(service, `/${service}?${repeat('id', keys)}`, headers))) found.set(e.id, e);
      return keys.map((k) => found.get(k) ?? null);
    }, opts);
  const grouped = (service, param) =>
    new DataLoader(async (keys) => {
      const list = entities(service, await fetchJson(service, `/${service}?${repeat(param, keys)}`, headers));
      const groups = new Map(keys.map((k) => [k, []]));
      for (const e of list) groups.get(e[param])?.push(e);
      return keys.map((k) => groups.get(k));
    }, opts);
  return {
    posts: byId('posts'),
    users: byId('users'),
    postsByUser: grouped('posts', 'userId'),
    commentsByPost: grouped('comments', 'postId'),
  };
}

function forwardedHeaders(h) {
  const out = { accept: 'application/json', 'x-request-id': h['x-request-id'] || randomUUID() };
  if (h.authorization) out.authorization = h.authorization;
  if (h['accept-language']) out['accept-language'] = h['accept-language'];
  return out;
}

// ---------------------------------------------------------------- GraphQL

const typeDefs = `#graphql
type Query {
  posts: [Post!]!
  post(id: ID!): Post
  user(id: ID!): User
}
type Post {
  id: ID!
  userId: ID!
  title: String!
  body: String!
  user: User
  comments: [Comment!]
}
type User {
  id: ID!
  name: String!
  username: String!
  email: String
  posts: [Post!]
}
type Comment {
  id: ID!
  name: String!
  email: String
  body: String!
}
`;

const resolvers = {
  Query: {
    posts: async (_, __, ctx) => entities('posts', await fetchJson('posts', '/posts', ctx.headers)),
    post: (_, { id }, ctx) => ctx.loaders.posts.load(id),
    user: (_, { id }, ctx) => ctx.loaders.users.load(id),
  },
  Post: {
    user: (p, _, ctx) => (p.userId == null ? null : ctx.loaders.users.load(p.userId)),
    comments: (p, _, ctx) => ctx.loaders.commentsByPost.load(p.id),
  },
  User: {
    posts: (u, _, ctx) => ctx.loaders.postsByUser.load(u.id),
  },
};

class LimitError extends GraphQLError {
  constructor(message, code, nodes) {
    super(message, { nodes, extensions: { code } });
  }
}

function depthLimitRule(context) {
  const fragments = new Map();
  for (const d of context.getDocument().definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  }
  const depth = (set, seen) => {
    let max = 0;
    for (const s of set.selections) {
      let d = 0;
      if (s.kind === Kind.FIELD) d = 1 + (s.selectionSet ? depth(s.selectionSet, seen) : 0);
      else if (s.kind === Kind.INLINE_FRAGMENT) d = depth(s.selectionSet, seen);
      else if (!seen.has(s.name.value) && fragments.has(s.name.value)) {
        d = depth(fragments.get(s.name.value).selectionSet, new Set(seen).add(s.name.value));
      }
      if (d > max) max = d;
    }
    return max;
  };
  return {
    OperationDefinition(op) {
      const d = depth(op.selectionSet, new Set());
      if (d > MAX_DEPTH) context.reportError(new LimitError(`Query depth ${d} exceeds the limit of ${MAX_DEPTH}.`, 'MAX_DEPTH_EXCEEDED', [op]));
    },
  };
}

function aliasLimitRule(context) {
  let aliases = 0;
  return {
    Field(node) {
      if (node.alias && ++aliases === MAX_ALIASES + 1) {
        context.reportError(new LimitError(`At most ${MAX_ALIASES} aliases per document.`, 'MAX_ALIASES_EXCEEDED', [node]));
      }
    },
  };
}

const KEEP = /^(BACKEND_|GRAPHQL_|BAD_USER_INPUT|BAD_REQUEST|PERSISTED_QUERY|OPERATION_RESOLUTION|MAX_|LIMIT_)/;

function formatError(formatted, error) {
  const limit = error?.originalError instanceof LimitError ? error.originalError : null;
  if (limit) return { ...formatted, extensions: { code: limit.extensions.code } };
  if (KEEP.test(formatted.extensions?.code ?? '')) return formatted;
  return { message: 'Unexpected error.', locations: formatted.locations, path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

const apollo = new ApolloServer({
  typeDefs,
  resolvers,
  nodeEnv: 'production',
  introspection: true,
  csrfPrevention: false,
  includeStacktraceInErrorResponses: false,
  status400ForVariableCoercionErrors: true,
  validationRules: [depthLimitRule, aliasLimitRule],
  parseOptions: { maxTokens: MAX_TOKENS },
  formatError,
});

// ---------------------------------------------------------------- HTTP (as the peer's)

function sendJson(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers });
  res.end(data);
}

function tooLarge(res) {
  res.shouldKeepAlive = false;
  sendJson(res, 413, { errors: [{ message: `Request body exceeds ${MAX_BODY_BYTES} bytes.`, extensions: { code: 'BODY_TOO_LARGE' } }] });
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function graphql(req, res, search) {
  let body;
  if (req.method === 'POST') {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return tooLarge(res);
    const raw = await readBody(req);
    if (raw === null) return tooLarge(res);
    if ((req.headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(raw);
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'Request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
      }
    } else {
      body = raw;
    }
  }
  const headers = new HeaderMap();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const forwarded = forwardedHeaders(req.headers);
  const result = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method.toUpperCase(), headers, search, body },
    context: async () => ({ headers: forwarded, loaders: makeLoaders(forwarded) }),
  });
  for (const [k, v] of result.headers) res.setHeader(k, v);
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
  } else {
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  }
}

async function handle(req, res) {
  const q = req.url.indexOf('?');
  const pathname = q < 0 ? req.url : req.url.slice(0, q);
  const search = q < 0 ? '' : req.url.slice(q + 1);
  if (pathname === '/graphql') return graphql(req, res, search);
  if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
  return sendJson(res, 404, { error: 'not found' });
}

await apollo.start();
const server = http.createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    else res.destroy();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, HOST, () => console.log(`blog peer ready on http://${HOST}:${PORT}/graphql`));

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    Promise.allSettled([apollo.stop(), agent.close()]).then(() => process.exit(0));
  });
}
