// The live view's front end: a pause button, a caption, a timeline (event time against
// processing time) and a table of the latest changed aggregates. It keeps every point and
// row it drew, keyed by the point's number and the row's aggregate id, and on each change
// only adds, moves and drops elements: nothing is drawn again from scratch.
const SVG = "http://www.w3.org/2000/svg";
const W = 680, H = 240, PAD = { left: 8, right: 8, top: 8, bottom: 22 };

function svgNode(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  return node;
}

function iso(ms) {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 16);
}

function render({ model, el }) {
  el.classList.add("cl-live");
  const bar = document.createElement("div");
  bar.className = "cl-live-bar";
  const pause = document.createElement("button");
  pause.className = "cl-live-pause jupyter-button";
  const caption = document.createElement("span");
  caption.className = "cl-live-caption";
  bar.append(pause, caption);

  const svg = svgNode("svg", { width: W, height: H, class: "cl-live-svg" });
  const plot = svgNode("g", {});
  const xAxis = svgNode("line", { class: "cl-live-axis", x1: PAD.left, x2: W - PAD.right,
    y1: H - PAD.bottom, y2: H - PAD.bottom });
  const labels = ["x0", "x1", "y1"].map((name) => {
    const t = svgNode("text", { class: `cl-live-label-${name}` });
    svg.append(t);
    return t;
  });
  labels[0].setAttribute("x", PAD.left); labels[0].setAttribute("y", H - 6);
  labels[1].setAttribute("x", W - PAD.right); labels[1].setAttribute("y", H - 6);
  labels[1].setAttribute("text-anchor", "end");
  labels[2].setAttribute("x", PAD.left + 2); labels[2].setAttribute("y", PAD.top + 8);
  svg.append(xAxis, plot);

  const table = document.createElement("table");
  table.className = "cl-live-table";
  table.innerHTML = "<thead><tr><th>aggregate</th><th>change</th><th>state</th>" +
    "<th>events</th><th>batch</th></tr></thead>";
  const body = document.createElement("tbody");
  table.append(body);
  el.append(bar, svg, table);

  const circles = new Map(); // point number -> circle
  const rows = new Map(); // aggregate id -> tr
  let domain = null;

  const place = (circle, p, d) => {
    const x = PAD.left + (W - PAD.left - PAD.right) * (p[1] - d[0]) / Math.max(1, d[1] - d[0]);
    const y = H - PAD.bottom - (H - PAD.top - PAD.bottom) * (p[2] - d[2]) / Math.max(1, d[3] - d[2]);
    circle.setAttribute("cx", x.toFixed(1));
    circle.setAttribute("cy", y.toFixed(1));
  };

  const drawPoints = () => {
    const points = model.get("points");
    const keep = new Set(points.map((p) => p[0]));
    for (const [id, circle] of circles) {
      if (!keep.has(id)) { circle.remove(); circles.delete(id); }
      else circle.classList.remove("cl-live-fresh");
    }
    if (points.length === 0) { domain = null; return; }
    let d = [Infinity, -Infinity, Infinity, -Infinity];
    for (const p of points) {
      d = [Math.min(d[0], p[1]), Math.max(d[1], p[1]), Math.min(d[2], p[2]), Math.max(d[3], p[2])];
    }
    const moved = domain === null || d.some((v, k) => v !== domain[k]);
    domain = d;
    for (const p of points) {
      let circle = circles.get(p[0]);
      const fresh = circle === undefined;
      if (fresh) {
        circle = svgNode("circle", { r: p[5] ? 5 : 2.5, "data-point": p[0] });
        if (p[5]) circle.classList.add("cl-live-restated");
        circle.classList.add("cl-live-fresh");
        const title = svgNode("title", {});
        title.textContent = `${p[3]} ${p[4]}\nevent ${iso(p[1])}\nprocessed ${iso(p[2])}` +
          (p[5] ? "\nrestated a past state" : "");
        circle.append(title);
        plot.append(circle);
        circles.set(p[0], circle);
      }
      if (fresh || moved) place(circle, p, d);
    }
    for (const circle of plot.querySelectorAll("circle.cl-live-restated")) plot.append(circle);
    labels[0].textContent = `event time ${iso(d[0])}`;
    labels[1].textContent = iso(d[1]);
    labels[2].textContent = `processing time up to ${iso(d[3])}`;
  };

  const drawRows = () => {
    const wanted = model.get("rows");
    const keep = new Set(wanted.map((r) => r.aggregate_id));
    for (const [id, tr] of rows) if (!keep.has(id)) { tr.remove(); rows.delete(id); }
    const latest = Math.max(0, ...wanted.map((r) => r.batch));
    wanted.forEach((r, k) => {
      let tr = rows.get(r.aggregate_id);
      if (tr === undefined) {
        tr = document.createElement("tr");
        tr.dataset.aggregate = r.aggregate_id;
        for (let i = 0; i < 5; i++) tr.append(document.createElement("td"));
        tr.children[2].className = "cl-live-state";
        rows.set(r.aggregate_id, tr);
      }
      const cells = [r.aggregate_id, r.change, r.state, String(r.events_applied), String(r.batch)];
      cells.forEach((text, i) => {
        if (tr.children[i].textContent !== text) tr.children[i].textContent = text;
      });
      tr.classList.toggle("cl-live-restated", r.restated);
      tr.classList.toggle("cl-live-fresh", r.batch === latest);
      if (body.children[k] !== tr) body.insertBefore(tr, body.children[k] || null);
    });
  };

  const drawBar = () => {
    const paused = model.get("paused");
    pause.textContent = paused ? "resume" : "pause";
    pause.title = paused ? "show the batches held, and the next ones as they come"
      : "hold new batches (the live fold goes on in the kernel)";
    caption.textContent = model.get("caption");
  };

  const onPause = () => {
    model.set("paused", !model.get("paused"));
    model.save_changes();
  };
  pause.addEventListener("click", onPause);
  const handlers = [["change:points", drawPoints], ["change:rows", drawRows],
    ["change:paused", drawBar], ["change:caption", drawBar]];
  for (const [name, handler] of handlers) model.on(name, handler);
  drawBar(); drawPoints(); drawRows();
  return () => {
    for (const [name, handler] of handlers) model.off(name, handler);
    pause.removeEventListener("click", onPause);
  };
}

export default { render };
