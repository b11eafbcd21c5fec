// skinml teaching-set quiz: vanilla JS, no network. State lives in localStorage under
// "skinml-quiz|<set fingerprint>|<mode>|<trainee>", so closing the browser loses nothing.
"use strict";
(function () {
  const Q = JSON.parse(document.getElementById("quiz-data").textContent);
  const AI = Q.mode === "ai_support";
  const PREFIX = "skinml-quiz|" + Q.fingerprint + "|" + Q.mode + "|";
  const LAST = PREFIX + "#last-trainee";
  const CONFIDENCE = [
    [0.2, "guessing"], [0.4, "unsure"], [0.6, "fairly sure"], [0.8, "sure"], [1.0, "certain"],
  ];
  const $ = (id) => document.getElementById(id);
  let state = null;
  let shownAt = null; // performance.now() when the current case/step was shown

  function storageKey(trainee) { return PREFIX + trainee; }
  function load(trainee) {
    try { return JSON.parse(localStorage.getItem(storageKey(trainee)) || "null"); }
    catch (e) { return null; }
  }
  function save() {
    localStorage.setItem(storageKey(state.trainee), JSON.stringify(state));
    localStorage.setItem(LAST, state.trainee);
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function sessionLabel(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function answer(caseId) {
    if (!state.answers[caseId]) state.answers[caseId] = {};
    return state.answers[caseId];
  }
  function finalDx(a) { return AI ? a.final_dx : a.own_dx; }
  function isDone(a) { return !!(a && finalDx(a)); }
  function nAnswered() { return Q.cases.filter((c) => isDone(state.answers[c.id])).length; }

  // -- timing: seconds are added to the step being shown when the trainee leaves it --------
  function step(a) { return AI && a.own_locked ? "ai" : "own"; }
  function flushTime() {
    if (!state || shownAt === null) return;
    const a = answer(Q.cases[state.current].id);
    const key = step(a) === "ai" ? "seconds_ai" : "seconds_own";
    a[key] = (a[key] || 0) + (performance.now() - shownAt) / 1000;
    shownAt = performance.now();
    save();
  }

  // -- start screen ---------------------------------------------------------------------------
  function startScreen() {
    $("intro").textContent = Q.cases.length + " cases. For each case choose the diagnosis " +
      "from the list and say how sure you are." + (AI ?
        " Each case has two steps: first your own answer, which is then locked; then the " +
        "AI's probabilities and heatmap, and your final answer." : "");
    const last = localStorage.getItem(LAST);
    if (last) $("trainee").value = last;
    $("trainee").addEventListener("input", showResume);
    $("start").addEventListener("click", () => begin(false));
    $("restart").addEventListener("click", () => begin(true));
    showResume();
  }
  function showResume() {
    const id = $("trainee").value.trim();
    const saved = id ? load(id) : null;
    const info = $("resume-info");
    if (saved) {
      const n = Q.cases.filter((c) => isDone(saved.answers[c.id])).length;
      info.textContent = "Saved answers found for " + id + ": " + n + " of " + Q.cases.length +
        " answered (session " + saved.session + "). Continue to pick up where you left off.";
      info.hidden = false;
      $("start").textContent = "Continue";
      $("restart").hidden = false;
      if (saved.years_training !== "" && saved.years_training !== undefined) {
        $("years").value = saved.years_training;
      }
    } else {
      info.hidden = true;
      $("start").textContent = "Start";
      $("restart").hidden = true;
    }
  }
  function begin(fresh) {
    const id = $("trainee").value.trim();
    const yearsText = $("years").value.trim();
    const years = yearsText === "" ? "" : Number(yearsText);
    const err = $("start-error");
    if (!id) { err.textContent = "Enter your trainee ID."; err.hidden = false; return; }
    if (yearsText !== "" && !(years >= 0 && years <= 60)) {
      err.textContent = "Years of training: a number from 0 to 60, or leave it empty.";
      err.hidden = false;
      return;
    }
    err.hidden = true;
    const saved = fresh ? null : load(id);
    state = saved || {
      version: 1, fingerprint: Q.fingerprint, mode: Q.mode, trainee: id,
      session: sessionLabel(new Date()), current: 0, answers: {},
    };
    state.years_training = years;
    if (saved) state.current = firstOpen(saved.current);
    save();
    $("welcome").hidden = true;
    $("quiz").hidden = false;
    buildNav();
    show(state.current);
  }
  function firstOpen(from) {
    for (let k = 0; k < Q.cases.length; k++) {
      const i = (from + k) % Q.cases.length;
      if (!isDone(state.answers[Q.cases[i].id])) return i;
    }
    return from;
  }

  // -- one case ------------------------------------------------------------------------------
  function choices(fieldset, name, selected) {
    fieldset.textContent = "";
    for (const c of Q.classes) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio"; input.name = name; input.value = c.code;
      input.checked = c.code === selected;
      label.appendChild(input);
      label.appendChild(document.createTextNode(c.name));
      fieldset.appendChild(label);
    }
  }
  function confidence(fieldset, name, selected) {
    fieldset.textContent = "";
    for (const [v, text] of CONFIDENCE) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio"; input.name = name; input.value = String(v);
      input.checked = selected !== undefined && selected !== "" && Number(selected) === v;
      label.appendChild(input);
      label.appendChild(document.createTextNode(text));
      fieldset.appendChild(label);
    }
  }
  function picked(name) {
    const el = document.querySelector('input[name="' + name + '"]:checked');
    return el ? el.value : "";
  }
  function show(i) {
    flushTime();
    state.current = i;
    save();
    const c = Q.cases[i];
    const a = answer(c.id);
    $("case-img").src = c.image;
    $("case-img").alt = "dermoscopy image, " + c.id;
    $("case-id").textContent = c.id;
    choices($("own-dx"), "own_dx", a.own_dx);
    confidence($("own-conf"), "own_conf", a.own_conf);
    const locked = AI && a.own_locked;
    $("own-dx").disabled = locked;
    $("own-conf").disabled = locked;
    $("own-locked").hidden = !locked;
    $("save-own").hidden = locked;
    $("save-own").textContent = AI ? "Lock my answer and show the AI" : "Save and next";
    $("ai-step").hidden = !locked;
    if (locked) showAi(c, a);
    $("prev").disabled = i === 0;
    $("next").disabled = i === Q.cases.length - 1;
    progress();
    shownAt = performance.now();
  }
  function showAi(c, a) {
    const ai = c.ai || {};
    const img = $("ai-heatmap");
    img.hidden = !ai.heatmap;
    $("ai-no-heatmap").hidden = !!ai.heatmap;
    if (ai.heatmap) img.src = ai.heatmap;
    const list = $("ai-probs");
    list.textContent = "";
    const probs = Object.entries(ai.probabilities || {}).sort((x, y) => y[1] - x[1]);
    for (const [code, p] of probs.slice(0, 4)) {
      const li = document.createElement("li");
      const name = (Q.classes.find((k) => k.code === code) || { name: code }).name;
      li.textContent = name + ": " + Math.round(p * 100) + "%";
      const bar = document.createElement("span");
      bar.className = "pbar";
      bar.style.width = Math.round(p * 120) + "px";
      li.appendChild(bar);
      list.appendChild(li);
    }
    $("ai-mal").textContent = ai.malignant_probability === undefined ? "" :
      "Probability that the lesion is malignant: " +
      Math.round(ai.malignant_probability * 100) + "%";
    choices($("final-dx"), "final_dx", a.final_dx || a.own_dx);
    confidence($("final-conf"), "final_conf", a.final_conf);
  }
  function saveOwn() {
    const dx = picked("own_dx");
    if (!dx) { $("export-note").textContent = "Choose a diagnosis first."; return; }
    $("export-note").textContent = "";
    flushTime();
    const a = answer(Q.cases[state.current].id);
    a.own_dx = dx;
    a.own_conf = picked("own_conf");
    if (AI) {
      a.own_locked = true;
      save();
      show(state.current);
    } else {
      save();
      next();
    }
  }
  function saveFinal() {
    const dx = picked("final_dx");
    if (!dx) { $("export-note").textContent = "Choose your final diagnosis first."; return; }
    $("export-note").textContent = "";
    flushTime();
    const a = answer(Q.cases[state.current].id);
    a.final_dx = dx;
    a.final_conf = picked("final_conf");
    save();
    next();
  }
  function next() {
    if (state.current < Q.cases.length - 1) show(state.current + 1);
    else { show(firstOpen(0)); progress(); }
  }
  function buildNav() {
    const nav = $("nav");
    nav.textContent = "";
    Q.cases.forEach((c, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(i + 1);
      b.title = c.id;
      b.addEventListener("click", () => show(i));
      nav.appendChild(b);
    });
  }
  function progress() {
    const n = nAnswered();
    $("progress").textContent = "Case " + (state.current + 1) + " of " + Q.cases.length +
      " \u00b7 " + n + " answered" + (n === Q.cases.length ? " \u00b7 all done: export your answers" : "");
    $("bar-fill").style.width = (100 * n / Q.cases.length) + "%";
    Array.from($("nav").children).forEach((b, i) => {
      const a = state.answers[Q.cases[i].id];
      b.className = (isDone(a) ? "done" : (a && a.own_dx ? "half" : "")) +
        (i === state.current ? " here" : "");
    });
  }

  // -- export: the long CSV `skinml-teach score` reads, header from Q.columns ------------------
  function csvCell(v) {
    const s = v === undefined || v === null ? "" : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function secs(x) { return x === undefined ? "" : (Math.round(x * 10) / 10).toFixed(1); }
  function rows() {
    return Q.cases.map((c) => {
      const a = state.answers[c.id] || {};
      const own = a.own_dx || "";
      const fin = AI ? (a.final_dx || "") : own;
      const total = (a.seconds_own || 0) + (a.seconds_ai || 0);
      const v = {
        set_fingerprint: Q.fingerprint, quiz_mode: Q.mode, trainee: state.trainee,
        years_training: state.years_training, session: state.session, case: c.id,
        diagnosis: fin, confidence: AI ? (fin ? a.final_conf || "" : "") : (a.own_conf || ""),
        unaided_diagnosis: AI ? own : "", unaided_confidence: AI ? (a.own_conf || "") : "",
        aided_diagnosis: AI ? fin : "", aided_confidence: AI && fin ? (a.final_conf || "") : "",
        seconds: a.seconds_own === undefined && a.seconds_ai === undefined ? "" : secs(total),
        unaided_seconds: AI ? secs(a.seconds_own) : "", aided_seconds: AI ? secs(a.seconds_ai) : "",
      };
      return Q.columns.map((k) => csvCell(v[k])).join(",");
    });
  }
  let exportUrl = null;
  function exportCsv() {
    flushTime();
    const text = [Q.columns.join(","), ...rows()].join("\r\n") + "\r\n";
    const safe = (s) => String(s).replace(/[^A-Za-z0-9._-]+/g, "_");
    const name = "answers_" + safe(state.trainee) + "_" + safe(state.session) + ".csv";
    const blob = new Blob([text], { type: "text/csv;charset=utf-8" });
    // The previous export's URL is released now, not on a timer: a busy PC may take longer
    // than any fixed delay to start the download, and a revoked URL fails it silently.
    if (exportUrl) URL.revokeObjectURL(exportUrl);
    exportUrl = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = exportUrl; link.download = name;
    document.body.appendChild(link); link.click(); link.remove();
    $("export-text").value = text;
    $("export-name").textContent = name;
    const open = Q.cases.length - nAnswered();
    $("export-note").textContent = "Saved as " + name + "." + (open ?
      " " + open + " cases are unanswered; they count as wrong." : "");
  }

  $("save-own").addEventListener("click", saveOwn);
  $("save-final").addEventListener("click", saveFinal);
  $("prev").addEventListener("click", () => show(Math.max(0, state.current - 1)));
  $("next").addEventListener("click", () => show(Math.min(Q.cases.length - 1, state.current + 1)));
  $("export").addEventListener("click", exportCsv);
  window.addEventListener("pagehide", flushTime);
  document.addEventListener("visibilitychange", () => { if (document.hidden) flushTime(); });
  startScreen();
})();
