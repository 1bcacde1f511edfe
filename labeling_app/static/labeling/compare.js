// The blind comparison: keep both clips in step, unlock the vote once both were played to the
// end, keyboard shortcuts for every choice, and an idempotent submit (the form's token is
// reused by every retry, so a double click or a network retry saves one vote).
(function () {
  "use strict";
  const form = document.getElementById("vote-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const loadedAt = performance.now();
  const left = $("video-left"), right = $("video-right");
  const videos = [left, right];
  const plays = { left: 0, right: 0 };
  // A clip counts as played only when it ended after at least this share of it was watched:
  // seeking to the end does not unlock the vote.
  const WATCHED_SHARE = 0.9;
  // Drift between the two clips (seconds) above which the right one is moved to the left one.
  const MAX_DRIFT = 0.15;
  let syncing = false;

  function watchedSeconds(video) {
    let total = 0;
    for (let i = 0; i < video.played.length; i++) total += video.played.end(i) - video.played.start(i);
    return total;
  }

  function onEnded(side, video) {
    if (!video.duration || watchedSeconds(video) >= WATCHED_SHARE * video.duration) {
      plays[side] += 1;
      $("plays-" + side).textContent = plays[side];
      $(side === "left" ? "plays-a" : "plays-b").value = plays[side];
    }
    if (left.ended && right.ended) syncing = false;
    updateLock();
  }
  left.addEventListener("ended", () => onEnded("left", left));
  right.addEventListener("ended", () => onEnded("right", right));

  function updateLock() {
    const unlocked = plays.left > 0 && plays.right > 0;
    $("vote-fieldset").disabled = !unlocked;
    $("submit-vote").disabled = !unlocked;
    form.dataset.locked = unlocked ? "false" : "true";
    $("vote-lock").textContent = unlocked
      ? "Both responses were played. You can vote now (and replay them as often as you like)."
      : "Play both responses to the end to unlock the vote.";
    if (unlocked && !document.querySelector(".vote-row.focused")) focusRow(rows()[0]);
  }

  function playBoth() {
    if (videos.some((v) => v.ended)) videos.forEach((v) => { v.currentTime = 0; });
    const t = Math.min(left.currentTime, right.currentTime);
    videos.forEach((v) => { if (v.duration > t) v.currentTime = t; });
    syncing = true;
    videos.forEach((v) => v.play().catch(() => {}));
  }
  function pauseBoth() { syncing = false; videos.forEach((v) => v.pause()); }
  function restartBoth() { pauseBoth(); videos.forEach((v) => { v.currentTime = 0; }); playBoth(); }
  function togglePlay() { if (videos.some((v) => !v.paused && !v.ended)) pauseBoth(); else playBoth(); }

  left.addEventListener("timeupdate", () => {
    if (!syncing || right.paused || right.ended || left.currentTime >= right.duration) return;
    if (Math.abs(left.currentTime - right.currentTime) > MAX_DRIFT) right.currentTime = left.currentTime;
  });
  // Pausing one clip by its own controls while both play pauses both; each clip alone plays freely.
  videos.forEach((v) => v.addEventListener("pause", () => { if (syncing && !v.ended) pauseBoth(); }));

  $("play-both").addEventListener("click", playBoth);
  $("pause-both").addEventListener("click", pauseBoth);
  $("restart-both").addEventListener("click", restartBoth);

  // --- Keyboard ---------------------------------------------------------------------------
  const JUDGMENT_KEYS = { a: "a", b: "b", t: "tie", x: "both_bad", n: "na" };
  const OVERALL_KEYS = { a: "a", b: "b", t: "tie" };
  const rows = () => Array.from(document.querySelectorAll(".vote-row"));

  function focusRow(row) {
    if (!row) return;
    rows().forEach((r) => r.classList.remove("focused"));
    row.classList.add("focused");
    row.scrollIntoView({ block: "nearest" });
  }
  function focusedRow() { return document.querySelector(".vote-row.focused") || rows()[0]; }
  function moveFocus(step) {
    const all = rows(), index = all.indexOf(focusedRow());
    focusRow(all[Math.max(0, Math.min(all.length - 1, index + step))]);
  }
  function choose(row, value) {
    const input = row.querySelector('input[value="' + value + '"]');
    if (!input || input.disabled) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }
  function stepScale(row, step) {
    const inputs = Array.from(row.querySelectorAll("input[type=radio]")).filter((i) => !i.disabled);
    if (!inputs.length) return;
    const current = inputs.findIndex((i) => i.checked);
    const next = current < 0 ? (step > 0 ? 0 : inputs.length - 1) : Math.max(0, Math.min(inputs.length - 1, current + step));
    inputs[next].checked = true;
    inputs[next].dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (!$("submit-vote").disabled) form.requestSubmit();
      return;
    }
    const target = event.target;
    if (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === " ") { event.preventDefault(); togglePlay(); return; }
    if (key === "r") { restartBoth(); return; }
    if ($("vote-fieldset").disabled) return;
    const row = focusedRow();
    if (/^[1-9]$/.test(key)) {
      const target = document.querySelector('.vote-row[data-kind="judgment"][data-row="' + (Number(key) - 1) + '"]');
      if (target) focusRow(target);
    } else if (key === "arrowdown") { event.preventDefault(); moveFocus(1); }
    else if (key === "arrowup") { event.preventDefault(); moveFocus(-1); }
    else if (key === "o") focusRow($("row-overall"));
    else if (key === "s") focusRow($("row-strength"));
    else if (key === "c") focusRow($("row-confidence"));
    else if (row.dataset.kind === "judgment" && key in JUDGMENT_KEYS) { if (choose(row, JUDGMENT_KEYS[key])) moveFocus(1); }
    else if (row.dataset.kind === "overall" && key in OVERALL_KEYS) { if (choose(row, OVERALL_KEYS[key])) moveFocus(1); }
    else if (row.dataset.kind === "scale" && (key === "arrowleft" || key === "arrowright")) {
      event.preventDefault(); stepScale(row, key === "arrowright" ? 1 : -1);
    }
  });
  rows().forEach((row) => row.addEventListener("click", () => focusRow(row)));

  // A tie has no strength: the strength row is disabled and stored as 1 by the server.
  form.addEventListener("change", (event) => {
    if (event.target.name !== "overall") return;
    const tie = event.target.value === "tie";
    document.querySelectorAll('input[name="strength"]').forEach((input) => {
      input.disabled = tie;
      if (tie) input.checked = false;
    });
  });

  // --- Submit -----------------------------------------------------------------------------
  let submitting = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submitting) return;
    submitting = true;
    $("submit-vote").disabled = true;
    $("vote-message").textContent = "";
    $("time-spent").value = Math.round(performance.now() - loadedAt);
    const body = new FormData(form);
    const attempts = 3;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const response = await fetch(form.dataset.voteUrl, {
          method: "POST", body, credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRFToken": body.get("csrfmiddlewaretoken") },
        });
        const answer = await response.json();
        if (response.ok) { window.location.assign(answer.next_url); return; }
        $("vote-message").textContent = answer.error;
        break;
      } catch (error) {
        // The same token is sent again: the server saves the vote at most once.
        if (attempt === attempts) {
          $("vote-message").textContent = "The server could not be reached. Your choices are still here: " +
            "submit again in a moment.";
          break;
        }
        $("vote-message").textContent = "The network failed; retrying…";
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
    submitting = false;
    $("submit-vote").disabled = false;
  });
  updateLock();
})();
