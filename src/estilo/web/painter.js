// The mask painter of estilo's studio (gr.HTML's js_on_load: element, props and watch are
// Gradio's). The photo is shown under a canvas of its own size; brush, fill and eraser paint
// the canvas in the paintings' colours; props.value.mask is the canvas as a PNG data URL
// (null when empty), read by the server (estilo/web/painted.py). Strokes may start outside
// the photo, even outside the painter: they are clipped to the photo.
const root = element.querySelector(".painter");
const stage = root.querySelector(".stage");
const frame = root.querySelector(".frame");
const photo = root.querySelector("img.photo");
const canvas = root.querySelector("canvas.strokes");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const size = root.querySelector("input.size");
const palette = [...root.querySelectorAll("button.colour")].map((b) => b.dataset.colour);
const rgb = palette.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
const MAX_HEIGHT = 420;  // px on screen
const undo = [];
let tool = "brush";
let colour = 0;
let last = null;

function show(value) {
  const has = !!(value && value.photo);
  root.classList.toggle("no-photo", !has);
  undo.length = 0;
  if (!has) {
    photo.removeAttribute("src");
    canvas.width = canvas.height = 0;
    return;
  }
  photo.src = value.photo;
  canvas.width = value.width;
  canvas.height = value.height;
  frame.style.aspectRatio = `${value.width} / ${value.height}`;
  frame.style.width = `min(100%, ${Math.round(MAX_HEIGHT * value.width / value.height)}px)`;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  root.dataset.painted = value.mask ? "yes" : "no";
  if (value.mask) {
    const strokes = new Image();
    strokes.onload = () => {
      ctx.drawImage(strokes, 0, 0, canvas.width, canvas.height);
      crisp();
      root.dataset.shown = String(Date.now());
    };
    strokes.src = value.mask;
  } else {
    root.dataset.shown = String(Date.now());
  }
}

function at(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * canvas.width / r.width,
          (event.clientY - r.top) * canvas.height / r.height];
}

function radius() {  // the slider: the brush's diameter in % of the photo's long side
  return Math.max(1, (Number(size.value) / 200) * Math.max(canvas.width, canvas.height));
}

function line(a, b) {
  ctx.save();
  ctx.globalCompositeOperation = tool === "eraser" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = palette[colour];
  ctx.lineWidth = 2 * radius();
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a[0], a[1]);
  ctx.lineTo(b[0], b[1]);
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(b[0], b[1], radius(), 0, 2 * Math.PI);
  ctx.fill();
  ctx.restore();
}

function nearest(p, i) {
  let best = 0;
  let distance = Infinity;
  for (let k = 0; k < rgb.length; k++) {
    const c = rgb[k];
    const d = (p[i] - c[0]) ** 2 + (p[i + 1] - c[1]) ** 2 + (p[i + 2] - c[2]) ** 2;
    if (d < distance) { distance = d; best = k; }
  }
  return best;
}

function crisp() {  // every pixel one brush colour or nothing: no soft edges in the mask
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const p = image.data;
  for (let i = 0; i < p.length; i += 4) {
    if (p[i + 3] < 128) { p[i] = p[i + 1] = p[i + 2] = p[i + 3] = 0; continue; }
    const c = rgb[nearest(p, i)];
    p[i] = c[0]; p[i + 1] = c[1]; p[i + 2] = c[2]; p[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function fill(x, y) {  // the connected area of one colour (or of nothing) at x, y
  const w = canvas.width;
  const h = canvas.height;
  x = Math.floor(x); y = Math.floor(y);
  if (x < 0 || y < 0 || x >= w || y >= h) return false;
  const image = ctx.getImageData(0, 0, w, h);
  const p = image.data;
  const label = new Int8Array(w * h);
  for (let i = 0; i < w * h; i++) label[i] = p[4 * i + 3] < 128 ? -1 : nearest(p, 4 * i);
  const seed = label[y * w + x];
  if (seed === colour) return false;
  const c = rgb[colour];
  const todo = [y * w + x];
  label[y * w + x] = 100;
  while (todo.length) {
    const i = todo.pop();
    p[4 * i] = c[0]; p[4 * i + 1] = c[1]; p[4 * i + 2] = c[2]; p[4 * i + 3] = 255;
    const px = i % w;
    for (const j of [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i - w, i + w]) {
      if (j >= 0 && j < w * h && label[j] === seed) { label[j] = 100; todo.push(j); }
    }
  }
  ctx.putImageData(image, 0, 0);
  return true;
}

function commit() {  // the canvas becomes the component's value (sent with the next event)
  const p = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = false;
  for (let i = 3; i < p.length; i += 4) if (p[i]) { painted = true; break; }
  root.dataset.painted = painted ? "yes" : "no";
  props.value = Object.assign({}, props.value, {
    mask: painted ? canvas.toDataURL("image/png") : null,
  });
}

function remember() {
  undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
  if (undo.length > 20) undo.shift();
}

function inside(event) {
  const r = stage.getBoundingClientRect();
  return event.clientX >= r.left && event.clientX <= r.right &&
         event.clientY >= r.top && event.clientY <= r.bottom;
}

function begin(event) {
  remember();
  last = at(event);
  line(last, last);
}

stage.addEventListener("pointerdown", (event) => {
  if (!canvas.width || event.button > 0) return;
  event.preventDefault();
  if (tool === "fill") {
    remember();
    const p = at(event);
    if (fill(p[0], p[1])) commit(); else undo.pop();
    return;
  }
  begin(event);
});
// Followed over the whole document: a stroke that started outside the stage (pressed on the
// page's margin, say) begins where the pointer enters it, and ends wherever it is released.
function move(event) {
  if (!document.contains(root)) {
    document.removeEventListener("pointermove", move);
    return;
  }
  if (last === null) {
    if ((event.buttons & 1) && tool !== "fill" && canvas.width && inside(event)) begin(event);
    return;
  }
  const p = at(event);
  line(last, p);
  last = p;
}
function end() {
  if (last === null) return;
  last = null;
  crisp();
  commit();
}
document.addEventListener("pointermove", move);
document.addEventListener("pointerup", end);
document.addEventListener("pointercancel", end);

root.querySelectorAll("button.tool").forEach((button) => button.addEventListener("click", () => {
  tool = button.dataset.tool;
  root.querySelectorAll("button.tool").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
}));
root.querySelectorAll("button.colour").forEach((button, index) => button.addEventListener("click", () => {
  colour = index;
  if (tool === "eraser") root.querySelector("button.tool[data-tool=brush]").click();
  root.querySelectorAll("button.colour").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
}));
root.querySelector("button.undo").addEventListener("click", () => {
  if (!undo.length) return;
  ctx.putImageData(undo.pop(), 0, 0);
  commit();
});
root.querySelector("button.clear").addEventListener("click", () => {
  if (!canvas.width) return;
  remember();
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  commit();
});

show(props.value);
watch("value", () => show(props.value));
