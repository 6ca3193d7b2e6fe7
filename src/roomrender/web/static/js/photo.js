// Choosing an image: pick a file, drop one, paste one (handled page-wide by the app) or give a URL.
import { useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { megabytes } from './tasks.js';

// `limits` (GET /v1/tasks: input_limits) say which files the server takes; `refused` why the
// last file chosen was not sent.
export function PhotoPicker({ id, what, input, limits, refused, onFile, onUrl }) {
  const fileRef = useRef(null);
  const [dragging, setDragging] = useState(false);
  const [url, setUrl] = useState('');

  const drop = (event) => {
    event.preventDefault();
    setDragging(false);
    const [file] = event.dataTransfer.files;
    if (file) onFile(file);
  };
  const useUrl = (event) => {
    event.preventDefault();
    if (/^https?:\/\//i.test(url.trim())) {
      onUrl(url.trim());
      setUrl('');
    }
  };
  const chosen = (event) => {
    const file = event.currentTarget.files[0];
    if (file) onFile(file);
    event.currentTarget.value = '';
  };

  return html`<div class="picker">
    <div class=${`dropzone${dragging ? ' dragging' : ''}${input ? ' filled' : ''}`}
      onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${() => setDragging(false)} onDrop=${drop}>
      ${input ? html`
        <img class="thumb" src=${input.preview} alt="" />
        <div class="picked">
          <strong class="picked-name" title=${input.name}>${input.name}</strong>
          <span class="muted small">${input.status === 'uploading' ? 'Uploading…'
            : input.width ? `${input.width} × ${input.height}` : ''}</span>
          <button type="button" class="link" onClick=${() => fileRef.current.click()}>Replace</button>
        </div>` : html`
        <svg class="drop-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 16l4.6-4.6a2 2 0 0 1 2.8 0L16 16m-2-2 1.6-1.6a2 2 0 0 1 2.8 0L20 14M14 8h.01M6 20h12a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2z"/></svg>
        <p>Drop ${what} here, paste it, or</p>
        <button type="button" class="secondary" onClick=${() => fileRef.current.click()}>Choose a file</button>`}
      <input ref=${fileRef} id=${id} class="visually-hidden" type="file" tabindex="-1"
        accept=${limits ? limits.content_types.join(',') : 'image/*'} aria-label=${`Choose ${what}`} onChange=${chosen} />
    </div>
    ${refused ? html`<p class="error-text" role="alert">${refused}</p>`
      : input && input.error && html`<p class="error-text" role="alert">${input.error}</p>`}
    ${limits && html`<p class="hint">JPEG, PNG or WebP, up to ${megabytes(limits.max_bytes)}.</p>`}
    <form class="url-row" onSubmit=${useUrl}>
      <input type="url" inputmode="url" placeholder="…or an image URL" value=${url}
        aria-label=${`Image URL of ${what}`} onInput=${(e) => setUrl(e.currentTarget.value)} />
      <button type="submit" class="secondary" disabled=${!/^https?:\/\//i.test(url.trim())}>Use</button>
    </form>
  </div>`;
}
