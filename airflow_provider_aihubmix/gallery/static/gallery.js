// The gallery page: fetch one page of the run's cards as JSON, render one card per image (or per
// failed task) with its thumbnail; filters with counts, pages, a compare view, keyboard navigation.
// Every value from a manifest is set as text, never as HTML. No build step: this file is the script.
(function () {
  "use strict";
  const root = document.getElementById("gallery");
  const summary = document.getElementById("summary");
  const template = document.getElementById("card");
  const form = document.getElementById("filters");
  const pager = document.getElementById("pager");
  const pageStatus = document.getElementById("page-status");
  const exit = document.getElementById("compare-exit");
  const PAGE = 60;
  const EAGER_IMAGES = 12; // the first rows load at once; the rest as they scroll in
  const SELECTS = ["model", "task_id", "state"];
  const COMPARE = ["prompt", "map_index"];

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

  // The view's state lives in the page's own query string, so a filtered page or a comparison is a link.
  const here = new URL(window.location.href);
  const view = { offset: Number(here.searchParams.get("offset")) || 0, filters: {}, compare: here.searchParams.get("compare") === "1" };
  for (const name of [...SELECTS, ...COMPARE]) {
    const value = here.searchParams.get(name);
    if (value !== null && value !== "") view.filters[name] = value;
  }
  // A task's own page (?task_id=&map_index=, the "View image" link) is a grid; a comparison says so.
  const comparing = () => view.compare || view.filters.prompt !== undefined;

  function fact(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.fact = name;
    list.append(dt, dd);
  }

  let shownImages = 0;

  function card(task, image) {
    const node = template.content.firstElementChild.cloneNode(true);
    const m = task.manifest || {};
    node.dataset.task = task.task_id;
    node.dataset.mapIndex = String(task.map_index);
    node.dataset.outcome = task.outcome;
    node.dataset.model = m.model || "";
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
    const b = task.budget;
    if (b) {
      // The DAG budget's ledger for this task: what it reserved, what that settled to, a refusal.
      const parts = [];
      if (b.reserved_usd) parts.push(`reserved ${usd(b.reserved_usd)}`);
      if (b.actual_usd) parts.push(`spent ${usd(b.actual_usd)}`);
      if (b.open) parts.push(`${b.open} open`);
      if (b.released) parts.push(`${b.released} released`);
      if (b.refused) parts.push("refused by the DAG budget");
      fact(facts, "budget", parts.join(" · "));
    }
    const link = node.querySelector(".full");
    if (image) {
      node.dataset.image = image.name;
      link.href = image.src;
      const what = `${m.model || ""} image ${image.index} of ${label(task)}`;
      link.title = "Open the full image";
      link.setAttribute("aria-label", `Open the full image: ${what}`);
      const img = link.querySelector("img");
      img.loading = shownImages++ < EAGER_IMAGES ? "eager" : "lazy";
      // The grid shows thumbnails; the comparison, a few images side by side, the full images.
      img.src = comparing() ? image.src : image.thumb || image.src;
      if (image.width && image.height) {
        img.width = image.width;
        img.height = image.height;
      }
      img.alt = m.prompt ? `${what}: ${m.prompt}` : what;
      fact(facts, "image", `#${image.index} · ${image.width}×${image.height} · ${(image.content_type || "").replace("image/", "")}`);
      fact(facts, "seed", image.seed);
      fact(facts, "size", m.size);
      const cost = usd(image.cost_usd);
      fact(facts, "cost", cost && m.cost_kind === "estimated" ? cost + " (estimate)" : cost);
      if (image.revised_prompt) fact(facts, "revised", image.revised_prompt);
    } else {
      node.classList.add("problem");
      link.removeAttribute("href");
      link.tabIndex = 0;
      link.setAttribute("aria-label", `${label(task)}: ${OUTCOME[task.outcome] || task.outcome}`);
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
    const compare = node.querySelector(".compare");
    const target = m.prompt_sha256 ? { prompt: m.prompt_sha256 } : task.map_index >= 0 ? { map_index: String(task.map_index) } : null;
    if (target && !comparing()) {
      compare.hidden = false;
      compare.setAttribute("aria-label", `Compare every model's image for the prompt of ${label(task)}`);
      compare.addEventListener("click", () => go({ filters: target, offset: 0, compare: true }));
      node.compareTarget = target;
    } else {
      compare.remove();
    }
    return node;
  }

  function options(select, name, counts, total) {
    const chosen = view.filters[name] || "";
    select.replaceChildren();
    const all = document.createElement("option");
    all.value = "";
    all.textContent = `all (${total})`;
    select.append(all);
    for (const [value, n] of Object.entries(counts || {})) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = `${name === "state" ? OUTCOME[value] || value : value} (${n})`;
      option.dataset.count = String(n);
      select.append(option);
    }
    select.value = chosen;
  }

  function render(data) {
    const s = data.summary;
    const whole = data.run_summary || s;
    const cost = usd(s.cost_usd);
    summary.textContent =
      `${s.images} image(s) from ${s.tasks} task instance(s)` +
      (s.tasks !== whole.tasks ? ` (of ${whole.tasks} in the run)` : "") +
      (s.failed ? ` · ${s.failed} failed or moderated` : "") +
      (s.earlier_images ? ` · ${s.earlier_images} earlier image(s) kept under earlier/` : "") +
      (cost ? ` · cost ${cost}` + (s.tasks_without_cost ? ` (+${s.tasks_without_cost} task(s) without a price)` : "") : "");
    summary.dataset.images = String(s.images);
    summary.dataset.tasks = String(s.tasks);
    summary.dataset.cost = s.cost_usd === null ? "" : String(s.cost_usd);
    if (data.counts) {
      form.hidden = false;
      for (const name of SELECTS) {
        const total = Object.values(data.counts[name] || {}).reduce((a, b) => a + b, 0);
        options(form.elements[name], name, data.counts[name], total);
      }
    }
    exit.hidden = !comparing();
    document.body.classList.toggle("comparing", comparing());
    root.replaceChildren();
    shownImages = 0;
    if (!data.tasks.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = Object.keys(view.filters).length ? "No image matches these filters." : "No AIHubMix task in this run has stored images.";
      root.append(p);
    }
    const byTask = new Map();
    for (const task of data.tasks) {
      const group = comparing() ? "Compare" : task.task_id;
      if (!byTask.has(group)) byTask.set(group, []);
      byTask.get(group).push(task);
    }
    for (const [group, tasks] of byTask) {
      const h = document.createElement("h2");
      const m = (tasks[0] && tasks[0].manifest) || {};
      h.textContent = comparing() ? (m.prompt ? `Compare: ${m.prompt}` : `Compare: ${view.filters.prompt ? "prompt sha256 " + short(view.filters.prompt) : "map index " + view.filters.map_index}`) : group;
      const models = [...new Set(tasks.map((t) => t.manifest && t.manifest.model).filter(Boolean))];
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = models.join(", ");
      h.append(meta);
      const grid = document.createElement("div");
      grid.className = comparing() ? "grid compare-row" : "grid";
      grid.setAttribute("role", "list");
      for (const task of tasks) {
        const made = task.images.length ? task.images.map((image) => card(task, image)) : [card(task, null)];
        made.forEach((node) => node.setAttribute("role", "listitem"));
        grid.append(...made);
      }
      root.append(h, grid);
    }
    const p = data.page;
    pager.hidden = !p || (p.prev_offset === null && p.next_offset === null);
    if (p) {
      const pages = Math.max(1, Math.ceil(p.cards / p.limit));
      pageStatus.textContent = `page ${Math.floor(p.offset / p.limit) + 1} of ${pages} · ${p.cards} card(s)`;
      pager.querySelector("[data-go=prev]").disabled = p.prev_offset === null;
      pager.querySelector("[data-go=next]").disabled = p.next_offset === null;
      pager.dataset.prev = p.prev_offset === null ? "" : String(p.prev_offset);
      pager.dataset.next = p.next_offset === null ? "" : String(p.next_offset);
    }
    document.body.dataset.loaded = "true";
  }

  function load() {
    document.body.dataset.loaded = "false";
    const url = new URL(root.dataset.api, window.location.href);
    for (const name of [...SELECTS, ...COMPARE]) url.searchParams.delete(name); // the view's filters rule
    for (const [name, value] of Object.entries(view.filters)) url.searchParams.set(name, value);
    url.searchParams.set("offset", String(view.offset));
    url.searchParams.set("limit", String(PAGE));
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
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
  }

  function go(change) {
    if (change.filters !== undefined) view.filters = change.filters;
    if (change.offset !== undefined) view.offset = change.offset;
    view.compare = Boolean(change.compare);
    const url = new URL(window.location.href);
    for (const name of [...SELECTS, ...COMPARE, "offset", "compare"]) url.searchParams.delete(name);
    for (const [name, value] of Object.entries(view.filters)) url.searchParams.set(name, value);
    if (view.offset) url.searchParams.set("offset", String(view.offset));
    if (view.compare) url.searchParams.set("compare", "1");
    window.history.pushState(null, "", url);
    return load().then(() => {
      const first = root.querySelector(".card a[href], .card .full");
      if (first && change.focus !== false) first.focus({ preventScroll: false });
    });
  }

  form.addEventListener("change", () => {
    const filters = {};
    for (const name of SELECTS) if (form.elements[name].value) filters[name] = form.elements[name].value;
    go({ filters, offset: 0, focus: false });
  });
  exit.addEventListener("click", () => go({ filters: {}, offset: 0 }));
  pager.addEventListener("click", (event) => {
    const where = event.target.closest("button") && event.target.closest("button").dataset.go;
    if (where && pager.dataset[where] !== "") go({ offset: Number(pager.dataset[where]) });
  });
  window.addEventListener("popstate", () => window.location.reload());

  // Arrow keys move between cards (by column count for up/down), as a grid of thumbnails does.
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("select, input, textarea") || event.altKey || event.ctrlKey || event.metaKey) return;
    const cards = [...root.querySelectorAll(".card")];
    const current = event.target.closest ? event.target.closest(".card") : null;
    const at = cards.indexOf(current);
    const columns = Math.max(1, Math.round(root.clientWidth / ((cards[0] && cards[0].offsetWidth) || 1)));
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (event.key in moves && cards.length) {
      const next = cards[Math.min(cards.length - 1, Math.max(0, at < 0 ? 0 : at + moves[event.key]))];
      (next.querySelector("a[href]") || next.querySelector(".full")).focus();
      event.preventDefault();
    } else if (event.key === "c" && current && current.compareTarget) {
      go({ filters: current.compareTarget, offset: 0, compare: true });
    } else if (event.key === "Escape" && comparing()) {
      go({ filters: {}, offset: 0 });
    } else if ((event.key === "n" || event.key === "p") && !pager.hidden) {
      const where = event.key === "n" ? "next" : "prev";
      if (pager.dataset[where] !== "") go({ offset: Number(pager.dataset[where]) });
    }
  });

  load();
})();
