#!/usr/bin/env node
// A fast fake OpenAI upstream for the benchmark: it must never be the bottleneck, so every
// answer is built once at start-up and only the request body's `stream` flags are read.
//
// Wire format: https://platform.openai.com/docs/api-reference/chat/object (chat.completion),
// https://platform.openai.com/docs/api-reference/chat/streaming (chat.completion.chunk, the
// usage-only last chunk with `choices: []` when `stream_options.include_usage` is set, then
// `data: [DONE]`), https://platform.openai.com/docs/api-reference/embeddings/object.
//
// Usage: node fake_upstream.js [--host 127.0.0.1] [--port 18080] [--latency-ms 0]
//                              [--chunks 20] [--chunk-delay-ms 0]
// --latency-ms delays every answer (the first byte of a stream) by that much;
// --chunk-delay-ms spaces stream chunks (0: each chunk is its own write, back to back).
"use strict";

const http = require("http");

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 18080, latencyMs: 0, chunks: 20, chunkDelayMs: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (name === "--host") opts.host = value;
    else if (name === "--port") opts.port = Number(value);
    else if (name === "--latency-ms") opts.latencyMs = Number(value);
    else if (name === "--chunks") opts.chunks = Number(value);
    else if (name === "--chunk-delay-ms") opts.chunkDelayMs = Number(value);
    else {
      process.stderr.write(`unknown option ${name}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv);
const CREATED = Math.floor(Date.now() / 1000);
const MODEL = "gpt-4o-mini-2024-07-18";
const WORDS = [
  "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ",",
  " and", " then", " it", " rests", " under", " a", " shady", " old", " tree", ".",
];
const PROMPT_TOKENS = 42;
const COMPLETION_TOKENS = opts.chunks;
const USAGE = {
  prompt_tokens: PROMPT_TOKENS,
  completion_tokens: COMPLETION_TOKENS,
  total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 0,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0,
  },
};

function wordAt(i) {
  return WORDS[i % WORDS.length];
}

const completionText = Array.from({ length: opts.chunks }, (_, i) => wordAt(i)).join("");

const COMPLETION = Buffer.from(
  JSON.stringify({
    id: "chatcmpl-bench0000000000000000000000000",
    object: "chat.completion",
    created: CREATED,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: completionText, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: USAGE,
    service_tier: "default",
    system_fingerprint: "fp_bench00000",
  }),
);

function chunk(delta, finishReason, withUsageField) {
  const body = {
    id: "chatcmpl-bench0000000000000000000000000",
    object: "chat.completion.chunk",
    created: CREATED,
    model: MODEL,
    service_tier: "default",
    system_fingerprint: "fp_bench00000",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  if (withUsageField) body.usage = null;
  return `data: ${JSON.stringify(body)}\n\n`;
}

// The chunks of one stream, for each include_usage setting. The first carries the role, the
// last the finish_reason (content-less, as OpenAI sends it).
function streamParts(includeUsage) {
  const parts = [];
  for (let i = 0; i < opts.chunks; i++) {
    const delta = i === 0 ? { role: "assistant", content: wordAt(i), refusal: null } : { content: wordAt(i) };
    parts.push(chunk(delta, null, includeUsage));
  }
  parts.push(chunk({}, "stop", includeUsage));
  if (includeUsage) {
    const last = {
      id: "chatcmpl-bench0000000000000000000000000",
      object: "chat.completion.chunk",
      created: CREATED,
      model: MODEL,
      service_tier: "default",
      system_fingerprint: "fp_bench00000",
      choices: [],
      usage: USAGE,
    };
    parts.push(`data: ${JSON.stringify(last)}\n\n`);
  }
  parts.push("data: [DONE]\n\n");
  return parts.map((p) => Buffer.from(p));
}

const STREAM_WITH_USAGE = streamParts(true);
const STREAM_WITHOUT_USAGE = streamParts(false);

const EMBEDDING = Array.from({ length: 1536 }, (_, i) => Number(Math.sin(i).toFixed(8)));
const embeddingCache = new Map();

function embeddings(count) {
  let body = embeddingCache.get(count);
  if (body === undefined) {
    body = Buffer.from(
      JSON.stringify({
        object: "list",
        data: Array.from({ length: count }, (_, i) => ({
          object: "embedding",
          index: i,
          embedding: EMBEDDING,
        })),
        model: "text-embedding-3-small",
        usage: { prompt_tokens: 8 * count, total_tokens: 8 * count },
      }),
    );
    if (embeddingCache.size < 64) embeddingCache.set(count, body);
  }
  return body;
}

const JSON_HEADERS = { "content-type": "application/json", "openai-processing-ms": "1" };
const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "openai-processing-ms": "1",
};

function sendJson(res, status, body) {
  res.writeHead(status, { ...JSON_HEADERS, "content-length": body.length });
  res.end(body);
}

function sendError(res, status, message) {
  const body = Buffer.from(
    JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } }),
  );
  sendJson(res, status, body);
}

function later(fn) {
  if (opts.latencyMs > 0) setTimeout(fn, opts.latencyMs);
  else fn();
}

function sendStream(res, parts) {
  res.writeHead(200, SSE_HEADERS);
  if (opts.chunkDelayMs <= 0) {
    for (const part of parts) res.write(part);
    res.end();
    return;
  }
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    res.write(parts[i++]);
    if (i < parts.length) setTimeout(next, opts.chunkDelayMs);
    else res.end();
  };
  next();
}

function handle(req, res, raw) {
  const path = req.url.split("?", 1)[0];
  if (req.method === "GET" && (path === "/health" || path === "/v1/models")) {
    sendJson(res, 200, Buffer.from('{"object":"list","data":[]}'));
    return;
  }
  if (req.method !== "POST") {
    sendError(res, 405, "Method not allowed.");
    return;
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    sendError(res, 400, "We could not parse the JSON body of your request.");
    return;
  }
  if (path.endsWith("/chat/completions")) {
    if (body.stream === true) {
      const includeUsage = Boolean(body.stream_options && body.stream_options.include_usage);
      later(() => sendStream(res, includeUsage ? STREAM_WITH_USAGE : STREAM_WITHOUT_USAGE));
    } else {
      later(() => sendJson(res, 200, COMPLETION));
    }
    return;
  }
  if (path.endsWith("/embeddings")) {
    const count = Array.isArray(body.input) && typeof body.input[0] !== "number" ? body.input.length : 1;
    later(() => sendJson(res, 200, embeddings(Math.max(1, count))));
    return;
  }
  sendError(res, 404, `Unknown path ${path}.`);
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on("data", (c) => parts.push(c));
  req.on("end", () => handle(req, res, parts.length === 1 ? parts[0] : Buffer.concat(parts)));
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.maxRequestsPerSocket = 0;
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`fake upstream on http://${opts.host}:${opts.port} latency=${opts.latencyMs}ms\n`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
