// dscgg-bot dashboard: small enhancements over pages that work without this script.
// - the Links tab loads each row's dsc.gg data as the row comes into view (a few requests at a time);
// - the Copy button copies a new API key;
// - times are shown in the reader's time zone, recent ones as "5 minutes ago";
// - colour swatches take their colour.
"use strict";

(function () {
  const MAX_PARALLEL = 4;

  // ------------------------------------------------------------------ dsc.gg data per link row
  function loadCards() {
    const rows = Array.from(document.querySelectorAll("tr[data-card]"));
    if (!rows.length) return;
    const queue = [];
    let running = 0;

    function fill(row, html) {
      const holder = document.createElement("template");
      holder.innerHTML = html; // the server's own escaped fragment
      holder.content.querySelectorAll("template[data-cell]").forEach(function (part) {
        const cell = row.querySelector('[data-cell="' + part.dataset.cell + '"]');
        if (cell) cell.replaceChildren(part.content.cloneNode(true));
      });
      row.dataset.loaded = "true";
    }

    function next() {
      while (running < MAX_PARALLEL && queue.length) {
        const row = queue.shift();
        running += 1;
        row.querySelectorAll(".lazy").forEach(function (el) { el.classList.add("loading"); });
        fetch(row.dataset.card, { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (response) {
            if (response.status === 401) throw new Error("session ended");
            return response.text();
          })
          .then(function (html) { fill(row, html); })
          .catch(function () {
            row.querySelectorAll(".lazy").forEach(function (el) {
              el.classList.remove("loading");
              el.textContent = "—";
            });
          })
          .finally(function () { running -= 1; next(); });
      }
    }

    function want(row) {
      if (row.dataset.queued) return;
      row.dataset.queued = "true";
      queue.push(row);
      next();
    }

    if ("IntersectionObserver" in window) {
      const seen = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) { seen.unobserve(entry.target); want(entry.target); }
        });
      }, { rootMargin: "200px" });
      rows.forEach(function (row) { seen.observe(row); });
    } else {
      rows.forEach(want);
    }
  }

  // ------------------------------------------------------------------ copy a new API key
  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      const field = document.getElementById(button.dataset.copy);
      const status = document.querySelector("[data-copy-status]");
      if (!field) return;
      field.addEventListener("focus", function () { field.select(); });
      button.addEventListener("click", function () {
        const done = function () {
          button.textContent = button.dataset.copied;
          if (status) status.textContent = button.dataset.copiedStatus;
        };
        const fallback = function () {
          field.focus();
          field.select();
          try { if (document.execCommand("copy")) { done(); return; } } catch (e) { /* below */ }
          if (status) status.textContent = button.dataset.copyFallback;
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, fallback);
        } else {
          fallback();
        }
      });
    });
  }

  // ------------------------------------------------------------------ times
  // Times read in the page's language (the words around them are in it too), in the reader's time zone.
  const lang = document.documentElement.lang || undefined;
  const relative = "Intl" in window && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  const absolute = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const STEPS = [["second", 60], ["minute", 60], ["hour", 24], ["day", 7], ["week", 4.35], ["month", 12], ["year", Infinity]];

  function ago(date) {
    let amount = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(amount) < 45) return relative.format(0, "second");  // "now", "jetzt", "agora"…
    for (const [unit, size] of STEPS) {
      if (Math.abs(amount) < size) return relative.format(Math.round(amount), unit);
      amount /= size;
    }
    return absolute.format(date);
  }

  function times() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.title = absolute.format(date);
      el.textContent = el.hasAttribute("data-relative") && relative ? ago(date) : absolute.format(date);
    });
  }

  // ------------------------------------------------------------------ colour swatches
  function swatches() {
    document.querySelectorAll(".swatch[data-color]").forEach(function (el) {
      if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.backgroundColor = el.dataset.color;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    times();
    swatches();
    copyButtons();
    loadCards();
  });
})();
