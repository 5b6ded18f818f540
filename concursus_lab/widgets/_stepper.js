// The explorer's step control: back and forward buttons, and the arrow keys while it has
// the focus. It only moves `position` (0 = before the first delivery, `count` = after the
// last); the kernel computes what each step shows.
function render({ model, el }) {
  el.classList.add("cl-step-control");
  el.tabIndex = 0;
  el.title = "step through the replay: buttons, or the arrow keys (← →) while this has the focus";
  const button = (name, text, title) => {
    const b = document.createElement("button");
    b.className = `cl-step-${name} jupyter-button`;
    b.textContent = text;
    b.title = title;
    return b;
  };
  const back = button("back", "◀ back", "one delivery back (←)");
  const forward = button("forward", "forward ▶", "one delivery forward (→)");
  const label = document.createElement("span");
  label.className = "cl-step-label";
  el.append(back, forward, label);

  const go = (delta) => {
    const position = model.get("position");
    const next = Math.max(0, Math.min(model.get("count"), position + delta));
    if (next !== position) {
      model.set("position", next);
      model.save_changes();
    }
  };
  // a button disabled at either end would drop the focus: keep it on the control
  const onBack = () => { go(-1); el.focus(); };
  const onForward = () => { go(1); el.focus(); };
  const onKey = (event) => {
    const delta = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (delta === undefined) return;
    event.preventDefault();
    event.stopPropagation(); // the notebook does not see it
    go(delta);
  };
  back.addEventListener("click", onBack);
  forward.addEventListener("click", onForward);
  el.addEventListener("keydown", onKey);

  const update = () => {
    const position = model.get("position");
    label.textContent = model.get("label");
    back.disabled = position <= 0;
    forward.disabled = position >= model.get("count");
  };
  const events = ["change:position", "change:count", "change:label"];
  for (const name of events) model.on(name, update);
  update();
  return () => {
    for (const name of events) model.off(name, update);
    el.removeEventListener("keydown", onKey);
  };
}

export default { render };
