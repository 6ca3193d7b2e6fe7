// The mask brush: a canvas over the photo, painted with the pointer (mouse, pen or finger).
// Exported as the API wants it: white where the change goes, black elsewhere, photo-sized.
import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';

const MAX_SIDE = 2048;
const INK = '#ff2d87';

export function MaskCanvas({ width, height, brush, erasing, canvasRef, onPainted }) {
  const last = useRef(null);

  useEffect(() => {
    const canvas = canvasRef.current;
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    onPainted(false);
  }, [width, height]);

  const point = (event) => {
    const canvas = canvasRef.current;
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
      (event.clientY - box.top) * canvas.height / box.height];
  };

  const stroke = (from, to) => {
    const canvas = canvasRef.current;
    const context = canvas.getContext('2d');
    context.globalCompositeOperation = erasing ? 'destination-out' : 'source-over';
    const width = brush * canvas.width / canvas.getBoundingClientRect().width;
    context.beginPath();
    if (from[0] === to[0] && from[1] === to[1]) {
      // A tap: a dot (a zero-length line draws nothing).
      context.fillStyle = INK;
      context.arc(to[0], to[1], width / 2, 0, 2 * Math.PI);
      context.fill();
      return;
    }
    context.strokeStyle = INK;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.lineWidth = width;
    context.moveTo(from[0], from[1]);
    context.lineTo(to[0], to[1]);
    context.stroke();
  };

  const down = (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    event.currentTarget.setPointerCapture(event.pointerId);
    last.current = point(event);
    stroke(last.current, last.current);
  };
  const move = (event) => {
    if (!last.current) return;
    const next = point(event);
    stroke(last.current, next);
    last.current = next;
  };
  const up = () => {
    if (!last.current) return;
    last.current = null;
    onPainted(!isBlank(canvasRef.current));
  };

  return html`<canvas ref=${canvasRef} class="mask-canvas" data-erasing=${erasing}
    aria-label="Mask: paint over the area to change" onPointerDown=${down} onPointerMove=${move}
    onPointerUp=${up} onPointerCancel=${up} onLostPointerCapture=${up}></canvas>`;
}

export function clearMask(canvas) {
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
}

function isBlank(canvas) {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let alpha = 3; alpha < pixels.length; alpha += 4) if (pixels[alpha]) return false;
  return true;
}

// A PNG Blob of the mask, or null when nothing is painted.
export function maskBlob(canvas) {
  if (isBlank(canvas)) return Promise.resolve(null);
  const { width, height } = canvas;
  const white = document.createElement('canvas');
  white.width = width;
  white.height = height;
  const whiteContext = white.getContext('2d');
  whiteContext.drawImage(canvas, 0, 0);
  whiteContext.globalCompositeOperation = 'source-in';
  whiteContext.fillStyle = '#fff';
  whiteContext.fillRect(0, 0, width, height);
  const out = document.createElement('canvas');
  out.width = width;
  out.height = height;
  const context = out.getContext('2d');
  context.fillStyle = '#000';
  context.fillRect(0, 0, width, height);
  context.drawImage(white, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
}
