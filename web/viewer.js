// ConceptAttention Viewer: explore a run's maps inside the node.
// The node's UI output (viewer_data.py) brings the decoded pictures as JPEG and each
// view of the maps as an 8-bit grayscale tile sheet at the token grid; the page
// upsamples and colours them. Uses only ComfyUI's public frontend API (app,
// registerExtension, addDOMWidget) and its theme's CSS variables.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE = "ConceptAttentionViewer";
const UI_KEY = "concept_attention_viewer";
// matplotlib's plasma at 9 points, as maths.py colours the heatmaps
const PLASMA = ["0d0887", "4c02a1", "7e03a8", "a92395", "cc4778", "e56b5d", "f89540", "fdc527", "f0f921"]
  .map((hex) => [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)));

function plasma(value) {
  const position = Math.min(Math.max(value, 0), 1) * (PLASMA.length - 1);
  const low = Math.min(Math.floor(position), PLASMA.length - 2);
  const t = position - low;
  return PLASMA[low].map((c, i) => c * (1 - t) + PLASMA[low + 1][i] * t);
}

const STYLE = `
.ca-viewer { display: flex; flex-direction: column; gap: 6px; padding: 4px; box-sizing: border-box; height: 100%;
  color: var(--fg-color, #ddd); font: 12px sans-serif; }
.ca-row { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.ca-row label { display: flex; align-items: center; gap: 4px; color: var(--descrip-text, #999); }
.ca-chip { border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #222);
  color: var(--fg-color, #ddd); border-radius: 10px; padding: 1px 8px; cursor: pointer; }
.ca-chip.ca-selected { background: var(--fg-color, #ddd); color: var(--comfy-menu-bg, #222); }
.ca-viewer select, .ca-viewer input[type=range] { background: var(--comfy-input-bg, #222); color: var(--fg-color, #ddd);
  border: 1px solid var(--border-color, #555); border-radius: 4px; }
.ca-stage { position: relative; flex: 1; min-height: 120px; }
.ca-stage canvas { width: 100%; height: 100%; object-fit: contain; image-rendering: auto; }
.ca-ranking { position: absolute; margin: 0; padding: 4px 8px 4px 24px; pointer-events: none; max-width: 45%;
  max-height: 45%; overflow: hidden; box-sizing: border-box;
  background: var(--comfy-menu-bg, #222); border: 1px solid var(--border-color, #555); border-radius: 4px; opacity: 0.92; }
.ca-ranking:empty { display: none; }
.ca-legend { display: flex; align-items: center; gap: 6px; color: var(--descrip-text, #999); }
.ca-legend span.ca-ramp { flex: 1; height: 8px; border-radius: 4px; }
.ca-empty { color: var(--descrip-text, #999); }
`;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = reject;
    image.src = url;
  });
}

class Viewer {
  // choice(): what the user picked (concept word, step, layer, image, frame, opacity), kept in the
  // node's properties so that it outlives the node object (a tab switch rebuilds the graph).
  constructor(choice) {
    this.choice = choice;
    this.root = element("div", "ca-viewer");
    this.root.append(element("div", "ca-empty", "Run the graph to see the maps here."));
    this.data = null;
    // The picture is shown in grey under the map, so that the map's colours read on any object.
    this.state = { concept: 0, image: 0, frame: 0, step: "all", layer: "all", opacity: 0.6 };
    this.sheets = new Map();      // view index -> Uint8Array of the tile sheet
    this.shownInRun = false;      // whether the run under way has sent this node new maps
  }

  async show(data) {
    this.shownInRun = true;
    // The same maps again (a cached run, or ComfyUI handing back the outputs it keeps): nothing to redraw.
    if (this.data && data.maps[0] === this.data.maps[0] && data.pictures[0] === this.data.pictures[0]) return;
    this.data = data;
    this.sheets.clear();
    this.pictures = await Promise.all(data.pictures.map(loadImage));
    // A new run keeps what the user chose where it still exists: the concept (by its word), step, layer, image.
    const { concept, image = 0, frame = 0, step = "all", layer = "all", opacity = 0.6 } = this.choice();
    const keep = (value, options) => (options.includes(value) ? value : "all");
    this.state = {
      ...this.state,
      concept: Math.max(data.concepts.indexOf(concept), 0),
      image: image < data.batch ? image : 0,
      frame: frame < data.frames ? frame : 0,
      step: keep(step, data.steps),
      layer: keep(layer, data.layers),
      opacity,
    };
    this.build();
    await this.set({}, false);
  }

  // A run starts: until this node gets new maps, the ones shown are the last run's.
  runStarted() {
    this.shownInRun = false;
  }

  // The run stopped (an error, or interrupted) before this node got new maps: show none.
  runStopped(reason) {
    if (this.shownInRun || !this.data) return;
    this.data = null;
    this.root.dataset.ready = "false";
    this.root.replaceChildren(element("div", "ca-empty", `${reason} before this viewer got new maps, so it shows none ` +
                                                         "(the last ones were of an earlier run). Run the graph again."));
  }

  build() {
    const data = this.data;
    this.root.replaceChildren();
    const chips = element("div", "ca-row ca-chips");
    data.concepts.forEach((word, index) => {
      const chip = element("button", "ca-chip", word);
      chip.dataset.concept = word;
      chip.onclick = () => this.set({ concept: index });
      chips.append(chip);
    });
    const controls = element("div", "ca-row");
    if (data.batch > 1) {
      controls.append(this.select("image", "image", [...Array(data.batch).keys()].map((i) => [i, `${i + 1}`])));
    }
    const sigmas = data.sigmas ?? [];
    controls.append(this.select("step", "step", [["all", "all"],
      ...data.steps.map((s, i) => [s, sigmas[i] === undefined ? `${s}` : `${s} · σ ${sigmas[i].toFixed(3)}`])]));
    controls.append(this.select("layer", "layer", [["all", "all"], ...data.layers.map((l) => [l, `${l}`])]));
    controls.append(this.range("opacity", "opacity", 0, 1, 0.05));
    if (data.frames > 1) controls.append(this.range("frame", "frame", 0, data.frames - 1, 1));
    const stage = element("div", "ca-stage");
    this.canvas = element("canvas");
    this.ranking = element("ol", "ca-ranking");
    this.canvas.onmousemove = (event) => this.hover(event);
    this.canvas.onmouseleave = () => this.ranking.replaceChildren();
    stage.append(this.canvas, this.ranking);
    const ramp = element("span", "ca-ramp");
    ramp.style.background = `linear-gradient(to right, ${PLASMA.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
    this.legend = element("div", "ca-legend");
    this.legend.append(element("span", null, "low"), ramp, element("span", null, "high"));
    this.status = element("div", "ca-row ca-status");
    this.root.append(chips, controls, stage, this.legend, this.status);
  }

  select(key, label, options) {
    const wrapper = element("label", null, label);
    const select = element("select");
    select.dataset.control = key;
    for (const [value, text] of options) {
      const option = element("option", null, text);
      option.value = `${value}`;
      select.append(option);
    }
    select.onchange = () => {
      const value = key === "image" ? Number(select.value) : select.value === "all" ? "all" : Number(select.value);
      // Maps are kept per step or per layer: choosing one shows it over all of the other.
      const other = key === "step" ? { layer: "all" } : key === "layer" ? { step: "all" } : {};
      this.set({ [key]: value, ...other });
    };
    wrapper.append(select);
    return wrapper;
  }

  range(key, label, min, max, step) {
    const wrapper = element("label", null, label);
    const input = element("input");
    Object.assign(input, { type: "range", min, max, step, value: this.state[key] });
    input.dataset.control = key;
    // Drawn at every move; the workflow's change tracker told once, when the slider is let go.
    input.oninput = () => this.set({ [key]: Number(input.value) }, false);
    input.onchange = () => workflowChanged();
    wrapper.append(input);
    return wrapper;
  }

  async set(change, byUser = true) {
    Object.assign(this.state, change);
    const { concept, ...rest } = this.state;
    Object.assign(this.choice(), rest, { concept: this.data.concepts[concept] });
    if (byUser) workflowChanged();
    for (const select of this.root.querySelectorAll("[data-control]")) {
      select.value = `${this.state[select.dataset.control]}`;
    }
    await this.draw();
  }

  view() {
    const { step, layer } = this.state;
    if (step !== "all") return 1 + this.data.steps.indexOf(step);
    if (layer !== "all") return 1 + this.data.steps.length + this.data.layers.indexOf(layer);
    return 0;
  }

  async sheet(view) {
    if (!this.sheets.has(view)) {
      const image = await loadImage(this.data.maps[view]);
      const canvas = element("canvas");
      Object.assign(canvas, { width: image.width, height: image.height });
      const context = canvas.getContext("2d");
      context.drawImage(image, 0, 0);
      const rgba = context.getImageData(0, 0, image.width, image.height).data;
      const gray = new Uint8Array(image.width * image.height);
      for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
      this.sheets.set(view, gray);
    }
    return this.sheets.get(view);
  }

  // The map values of every concept at token (row, column) of the current image and frame, 0..1.
  values(sheet, row, column) {
    const { concepts, grid, token_frames, frame_map } = this.data;
    const [height, width] = grid;
    const block = this.state.image * token_frames + frame_map[this.state.frame];
    const y = block * height + row;
    return concepts.map((_, c) => sheet[y * concepts.length * width + c * width + column] / 255);
  }

  async draw() {
    const data = this.data;
    const { concept, image, frame, opacity } = this.state;
    const picture = this.pictures[image * data.frames + frame];
    this.canvas.width = picture.width;
    this.canvas.height = picture.height;
    const context = this.canvas.getContext("2d");
    context.filter = opacity > 0 ? "grayscale(1)" : "none";
    context.drawImage(picture, 0, 0);
    context.filter = "none";
    const sheet = await this.sheet(this.view());
    const [height, width] = data.grid;
    // Each map is stretched to 0..1 on its own over the whole image (and video), as Concept Heatmaps's default.
    let low = Infinity, high = -Infinity;
    for (let block = image * data.token_frames; block < (image + 1) * data.token_frames; block++) {
      for (let row = 0; row < height; row++) {
        for (let column = 0; column < width; column++) {
          const value = sheet[(block * height + row) * data.concepts.length * width + concept * width + column];
          low = Math.min(low, value);
          high = Math.max(high, value);
        }
      }
    }
    const small = element("canvas");
    Object.assign(small, { width, height });
    const smallContext = small.getContext("2d");
    const pixels = smallContext.createImageData(width, height);
    for (let row = 0; row < height; row++) {
      for (let column = 0; column < width; column++) {
        const value = this.values(sheet, row, column)[concept] * 255;
        const [r, g, b] = plasma((value - low) / Math.max(high - low, 1));
        pixels.data.set([r, g, b, 255], 4 * (row * width + column));
      }
    }
    smallContext.putImageData(pixels, 0, 0);
    context.imageSmoothingEnabled = true;
    context.globalAlpha = opacity;
    context.drawImage(small, 0, 0, picture.width, picture.height);
    context.globalAlpha = 1;
    for (const chip of this.root.querySelectorAll(".ca-chip")) {
      chip.classList.toggle("ca-selected", chip.dataset.concept === data.concepts[concept]);
    }
    // The maps are kept per step (over all layers) or per layer (over all steps): say which is shown.
    const { step, layer } = this.state;
    const over = step !== "all" ? ", over all layers" : layer !== "all" ? ", over all steps" : "";
    this.status.textContent = `${data.views[this.view()]}${over} · ${data.method}` +
      (data.frames > 1 ? ` · frame ${frame + 1}/${data.frames}` : "") +
      (step !== "all" || layer !== "all" ? " · one step or one layer at a time" : "") +
      (opacity > 0 ? " · picture in grey under the map" : "");
    this.root.dataset.view = `${this.view()}`;
    this.root.dataset.ready = "true";
  }

  async hover(event) {
    const box = this.canvas.getBoundingClientRect();
    // The canvas keeps the picture's aspect ratio inside its box (object-fit: contain).
    const scale = Math.min(box.width / this.canvas.width, box.height / this.canvas.height);
    const x = (event.clientX - box.left - (box.width - this.canvas.width * scale) / 2) / scale;
    const y = (event.clientY - box.top - (box.height - this.canvas.height * scale) / 2) / scale;
    const [height, width] = this.data.grid;
    const row = Math.floor((y / this.canvas.height) * height);
    const column = Math.floor((x / this.canvas.width) * width);
    if (row < 0 || column < 0 || row >= height || column >= width) {
      this.ranking.replaceChildren();
      return;
    }
    // The ranking sits in the stage's quarter farthest from the pointer, so it never covers it.
    const stage = this.ranking.parentElement.getBoundingClientRect();
    const right = event.clientX - stage.left > stage.width / 2;
    const below = event.clientY - stage.top > stage.height / 2;
    Object.assign(this.ranking.style, { left: right ? "4px" : "auto", right: right ? "auto" : "4px",
                                        top: below ? "4px" : "auto", bottom: below ? "auto" : "4px" });
    const values = this.values(await this.sheet(this.view()), row, column);
    const ranked = this.data.concepts.map((word, i) => [word, values[i]]).sort((a, b) => b[1] - a[1]);
    this.ranking.replaceChildren(...ranked.map(([word, value]) => {
      const item = element("li", null, `${word} ${value.toFixed(2)}`);
      item.dataset.concept = word;
      return item;
    }));
  }
}

// The choice lives in the node's properties: tell ComfyUI's change tracker, which keeps each tab's
// workflow (and its undo history), that they changed.
function workflowChanged() {
  const tracker = app.extensionManager?.workflow?.activeWorkflow?.changeTracker;
  (tracker?.captureCanvasState ?? tracker?.checkState)?.call(tracker);
}

function viewers() {
  return (app.graph?._nodes ?? []).filter((node) => node.conceptViewer);
}

app.registerExtension({
  name: "ConceptAttention.Viewer",
  async setup() {
    const style = element("style", null, STYLE);
    document.head.append(style);
    api.addEventListener("execution_start", () => viewers().forEach((node) => node.conceptViewer.runStarted()));
    api.addEventListener("execution_error", ({ detail }) => viewers().forEach((node) => node.conceptViewer.runStopped(
      `The run stopped with an error in ${detail?.node_type ?? "a node"}`)));
    api.addEventListener("execution_interrupted", () => viewers().forEach((node) => node.conceptViewer.runStopped(
      "The run was stopped")));
  },
  // ComfyUI restores a workflow's outputs when its tab is shown again; the panel takes its maps back.
  onNodeOutputsUpdated(outputs) {
    for (const node of viewers()) {
      const data = outputs?.[String(node.id)]?.[UI_KEY]?.[0];
      if (data) node.conceptViewer.show(data);
    }
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      onNodeCreated?.apply(this, arguments);
      // configure() replaces the properties after this: look them up each time
      this.conceptViewer = new Viewer(() => (this.properties.concept_viewer ??= {}));
      // the panel is a view, not a setting: keep it out of the saved workflow and the prompt
      const widget = this.addDOMWidget("viewer", "concept_attention_viewer", this.conceptViewer.root,
                                       { serialize: false, hideOnZoom: false, getMinHeight: () => 320 });
      widget.serialize = false;
      this.setSize([Math.max(this.size[0], 420), Math.max(this.size[1], 520)]);
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const data = message?.[UI_KEY]?.[0];
      if (data) this.conceptViewer.show(data);
    };
  },
});
