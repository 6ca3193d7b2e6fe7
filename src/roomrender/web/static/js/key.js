// Asking for the API key once; it is checked against /v1/account before it is kept.
import { useState } from 'preact/hooks';
import { Api } from './api.js';
import { html } from './html.js';

export function KeyForm({ initialError, onAccepted, onCancel }) {
  const [value, setValue] = useState('');
  const [shown, setShown] = useState(false);
  const [error, setError] = useState(initialError || '');
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    const key = value.trim();
    if (!key) {
      setError('Paste an API key first.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const account = await new Api(key).get('v1/account');
      onAccepted(key, account);
    } catch (problem) {
      setError(problem.status === 401
        ? `This key was not accepted: ${problem.message}.`
        : problem.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="card key-card" aria-labelledby="key-title">
    <h1 id="key-title">Connect with your API key</h1>
    <p class="muted">The first <code>make serve</code> printed one; or create one with${' '}
      <code>roomrender keys create --name you</code>. It is kept in this browser only, and sent
      only to this server.</p>
    <form onSubmit=${submit} class="key-form">
      <label for="api-key">API key</label>
      <div class="key-row">
        <input id="api-key" type=${shown ? 'text' : 'password'} autocomplete="off" spellcheck="false"
          placeholder="rr_…" value=${value} onInput=${(e) => setValue(e.currentTarget.value)}
          aria-invalid=${error ? 'true' : 'false'} aria-describedby="key-error" autofocus />
        <button type="button" class="ghost" aria-pressed=${shown}
          onClick=${() => setShown(!shown)}>${shown ? 'Hide' : 'Show'}</button>
      </div>
      <p id="key-error" class="error-text" role="alert">${error}</p>
      <div class="key-actions">
        <button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Save key'}</button>
        ${onCancel && html`<button type="button" class="ghost" onClick=${onCancel}>Cancel</button>`}
      </div>
    </form>
  </section>`;
}
