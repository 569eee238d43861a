// The gallery page: fetch the run's images as JSON, render one card per image (or per failed task).
// Every value from a manifest is set as text, never as HTML.
(function () {
  "use strict";
  const root = document.getElementById("gallery");
  const summary = document.getElementById("summary");
  const template = document.getElementById("card");

  const usd = (value) => (value === null || value === undefined ? null : "$" + Number(value).toFixed(4));
  const short = (hash) => (hash ? hash.slice(0, 12) + "…" : "");
  const label = (task) => (task.map_index >= 0 ? `${task.task_id}[${task.map_index}]` : task.task_id);
  const OUTCOME = {
    complete: "complete",
    moderated: "moderated",
    failed: "failed",
    ambiguous: "may be billed",
    running: "in progress",
    no_manifest: "no images yet",
  };

  function fact(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.fact = name;
    list.append(dt, dd);
  }

  // The first screenfuls load at once (a reviewer looks at them now); the rest as they scroll in.
  const EAGER_IMAGES = 24;
  let shownImages = 0;

  function card(task, image) {
    const node = template.content.firstElementChild.cloneNode(true);
    const m = task.manifest || {};
    node.dataset.task = task.task_id;
    node.dataset.mapIndex = String(task.map_index);
    node.dataset.outcome = task.outcome;
    node.querySelector(".model").textContent = m.model || task.operator || "";
    const badge = node.querySelector(".badge");
    badge.textContent = OUTCOME[task.outcome] || task.outcome;
    badge.classList.add(task.outcome);
    const prompt = node.querySelector(".prompt");
    if (m.prompt) {
      prompt.textContent = m.prompt;
      prompt.title = m.prompt;
    } else if (m.prompt_sha256) {
      prompt.textContent = "prompt hidden · sha256 " + short(m.prompt_sha256);
      prompt.title = "The task keeps its prompt out of lineage (lineage_include_prompt=False); sha256 " + m.prompt_sha256;
      prompt.classList.add("hidden");
    } else {
      prompt.remove();
    }
    const facts = node.querySelector(".facts");
    fact(facts, "task", label(task));
    if (m.earlier && m.earlier.length) {
      const n = m.earlier.reduce((sum, e) => sum + (e.images || 0), 0);
      fact(facts, "earlier", `${m.earlier.length} earlier purchase(s), ${n} image(s), kept under earlier/`);
    }
    const link = node.querySelector(".full");
    if (image) {
      node.dataset.image = image.name;
      link.href = image.src;
      link.title = "Open the full image";
      const img = link.querySelector("img");
      img.loading = shownImages++ < EAGER_IMAGES ? "eager" : "lazy";
      img.src = image.src;
      img.alt = m.prompt ? m.prompt : `${m.model || ""} image ${image.index}`;
      fact(facts, "image", `#${image.index} · ${image.width}×${image.height} · ${(image.content_type || "").replace("image/", "")}`);
      fact(facts, "seed", image.seed);
      fact(facts, "size", m.size);
      const cost = usd(image.cost_usd);
      fact(facts, "cost", cost && m.cost_kind === "estimated" ? cost + " (estimate)" : cost);
      if (image.revised_prompt) fact(facts, "revised", image.revised_prompt);
    } else {
      node.classList.add("problem");
      link.removeAttribute("href");
      link.textContent = OUTCOME[task.outcome] || task.outcome;
      fact(facts, "state", task.state);
      fact(facts, "size", m.size);
      const why = m.error || task.note;
      if (why) {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = why;
        p.title = why;
        node.querySelector("figcaption").append(p);
      }
    }
    return node;
  }

  function render(data) {
    const s = data.summary;
    const cost = usd(s.cost_usd);
    summary.textContent =
      `${s.images} image(s) from ${s.tasks} task instance(s)` +
      (s.failed ? ` · ${s.failed} failed or moderated` : "") +
      (s.earlier_images ? ` · ${s.earlier_images} earlier image(s) kept under earlier/` : "") +
      (cost ? ` · cost ${cost}` + (s.tasks_without_cost ? ` (+${s.tasks_without_cost} task(s) without a price)` : "") : "");
    summary.dataset.images = String(s.images);
    const byTask = new Map();
    for (const task of data.tasks) {
      if (!byTask.has(task.task_id)) byTask.set(task.task_id, []);
      byTask.get(task.task_id).push(task);
    }
    root.replaceChildren();
    if (!data.tasks.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No AIHubMix task in this run has stored images.";
      root.append(p);
    }
    for (const [taskId, tasks] of byTask) {
      const h = document.createElement("h2");
      h.textContent = taskId;
      const models = [...new Set(tasks.map((t) => t.manifest && t.manifest.model).filter(Boolean))];
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = models.join(", ");
      h.append(meta);
      const grid = document.createElement("div");
      grid.className = "grid";
      for (const task of tasks) {
        if (task.images.length) task.images.forEach((image) => grid.append(card(task, image)));
        else grid.append(card(task, null));
      }
      root.append(h, grid);
    }
    document.body.dataset.loaded = "true";
  }

  fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(async (response) => {
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(`${response.status} ${body.detail || response.statusText}`);
      }
      return response.json();
    })
    .then(render)
    .catch((error) => {
      summary.textContent = "Cannot load the images: " + error.message;
      document.body.dataset.loaded = "error";
    });
})();
