// While a worker recomputes a statistics report, poll its API endpoint and reload the page
// once the stored report is newer than the one shown (labeling_app.stats.refresh).
(function () {
  "use strict";
  const freshness = document.getElementById("freshness");
  if (!freshness || !freshness.querySelector(".notice")) return;
  const url = freshness.dataset.poll;
  const shown = freshness.dataset.computed || "";
  let tries = 0;
  async function poll() {
    tries += 1;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const body = await response.json();
        if (body.computed_at && new Date(body.computed_at).getTime() !== new Date(shown).getTime()) {
          window.location.reload();
          return;
        }
        if (body.error) return; // the page shows the error after a reload by hand
      }
    } catch (error) {
      // The server may be restarting: keep polling, more slowly.
    }
    if (tries < 200) window.setTimeout(poll, Math.min(2000 + tries * 500, 15000));
  }
  window.setTimeout(poll, 2000);
})();
