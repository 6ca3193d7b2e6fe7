// The native API (/v1). The key travels in a header on every call; the job's events are read with
// fetch() and a stream reader, since EventSource cannot send headers.
const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

export const isTerminal = (job) => TERMINAL.has(job.status);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || text || response.statusText || `HTTP ${response.status}`);
  }
  return body;
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'The server could not be reached. Is roomrender still running?');
  }
  return answer(response);
}

// The catalog needs no key: the tasks, what each takes and whether this server runs it, and the
// limits of input images (GET /v1/tasks); styles and room types (GET /v1/catalog).
export async function loadCatalog() {
  const [tasks, catalog] = await Promise.all([send('v1/tasks', {}), send('v1/catalog', {})]);
  return { engine: tasks.engine, tasks: tasks.tasks, limits: tasks.input_limits,
    styles: catalog.styles, room_types: catalog.room_types };
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  get(path) {
    return send(path, { headers: this.headers() });
  }

  post(path, body) {
    return send(path, {
      method: 'POST',
      headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  upload(blob, name) {
    const form = new FormData();
    form.append('file', blob, name);
    return send('v1/uploads', { method: 'POST', headers: this.headers(), body: form });
  }

  // Calls onJob with each status of the job until it ends. A dropped stream is read again
  // (after one plain read of the job), a few times, before giving up.
  async follow(jobId, onJob, signal) {
    const path = `v1/jobs/${encodeURIComponent(jobId)}`;
    for (let failures = 0; ; failures += 1) {
      try {
        const response = await fetch(`${path}/events`, {
          headers: this.headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store',
        });
        if (!response.ok) await answer(response);
        for await (const { event, data } of serverSentEvents(response.body, signal)) {
          if (event === 'status') {
            onJob(data);
            failures = 0;
          } else if (event === 'end') {
            return;
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
      }
      if (signal.aborted) return;
      if (failures >= 5) {
        throw new ApiError(0, 'network', 'Lost the connection to the server while following the job.');
      }
      await sleep(500 * (failures + 1), signal);
      const job = await this.get(path).catch(() => null);
      if (job) {
        onJob(job);
        if (isTerminal(job)) return;
      }
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Parses a text/event-stream body into {event, data} objects (data parsed as JSON).
export async function* serverSentEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', stop, { once: true });
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = parseBlock(block);
        if (message) yield message;
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  try {
    return { event, data: JSON.parse(data.join('\n')) };
  } catch {
    return null;
  }
}
