// What the browser keeps: the API key, and which input each job of this browser was made from
// (the API does not return a job's input; the before/after slider needs it).
const KEY = 'roomrender.key';
const INPUTS = 'roomrender.inputs';
const MAX_INPUTS = 200;

function read(name, fallback) {
  try {
    const value = localStorage.getItem(name);
    return value === null ? fallback : JSON.parse(value);
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    localStorage.setItem(name, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works for this visit.
  }
}

export const savedKey = () => read(KEY, '');
export const saveKey = (key) => write(KEY, key);
export const forgetKey = () => localStorage.removeItem(KEY);

export function rememberInput(jobId, url) {
  const inputs = read(INPUTS, {});
  inputs[jobId] = url;
  const ids = Object.keys(inputs);
  for (const old of ids.slice(0, Math.max(0, ids.length - MAX_INPUTS))) delete inputs[old];
  write(INPUTS, inputs);
}

export const inputOf = (jobId) => read(INPUTS, {})[jobId] || null;
