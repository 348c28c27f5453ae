// The visual rule builder of a segment: fields, operators and values in words, nested any/all
// groups, and a live count with a few members. The rule JSON stays in the form's textarea
// (shown under "advanced"), kept in sync both ways; the server sees the same JSON as before.
(function () {
  "use strict";

  var NO_VALUE = { is_empty: 1, is_not_empty: 1 };
  var LIST_OPS = { in: 1, not_in: 1, any_of: 1, all_of: 1, none_of: 1 };

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "class") node.className = attrs[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  var INPUT = "border border-base-200 rounded-default px-2 py-1 text-sm bg-white dark:bg-base-900 dark:border-base-700";
  var BUTTON = "border border-base-200 rounded-default px-2 py-1 text-sm bg-white hover:text-primary-600 dark:bg-base-900 dark:border-base-700";

  function setup() {
    var textarea = document.getElementById("id_rules");
    var box = document.getElementById("kequn-live-count");
    var sampleList = document.getElementById("kequn-live-sample");
    var data = document.getElementById("kequn-rule-catalogue");
    if (!textarea || !box || !data) return;
    var cat = JSON.parse(data.textContent);
    var T = cat.texts;
    var fields = {};
    cat.groups.forEach(function (g) {
      g.fields.forEach(function (f) { fields[f.field] = f; });
    });
    var labels = {}; // picker value labels by kind, filled from the lookup endpoint
    var state = null;
    var touched = false;
    var timer = null;
    var seq = 0;
    var lang = document.documentElement.lang || undefined;

    // The textarea goes under a collapsible "advanced" view; the builder takes its place.
    var builder = el("div", { id: "kequn-rule-builder", class: "flex flex-col gap-2 mb-2" });
    var jsonError = el("p", { class: "text-sm text-red-600", "aria-live": "polite" });
    var details = el("details", { class: "mt-2", id: "kequn-rule-json" }, [
      el("summary", { class: "cursor-pointer text-sm", text: T.advanced }),
    ]);
    textarea.parentNode.insertBefore(builder, textarea);
    textarea.parentNode.insertBefore(details, textarea);
    details.appendChild(textarea);
    details.appendChild(jsonError);

    function readTextarea() {
      var text = (textarea.value || "").trim();
      if (!text || text === "null") return { match: "all", conditions: [] };
      var rule = JSON.parse(text);
      if (!rule || typeof rule !== "object" || !Array.isArray(rule.conditions)) {
        throw new Error("{\"match\": \"all\", \"conditions\": [...]}");
      }
      return rule;
    }

    function isGroup(node) { return node && Array.isArray(node.conditions); }

    function isComplete(cond) {
      var f = fields[cond.field];
      if (!f || !cond.operator) return false;
      if (cond.field === "consent" && (!cond.channel || !cond.purpose)) return false;
      if (cond.field === "browsed_not_bought" && !cond.days) return false;
      if (NO_VALUE[cond.operator]) return true;
      var v = cond.value;
      if (v === undefined || v === null || v === "") return false;
      if (Array.isArray(v)) {
        if (!v.length) return false;
        return v.every(function (x) { return x !== "" && x !== null && x !== undefined; });
      }
      return true;
    }

    function allComplete(node) {
      if (isGroup(node)) return node.conditions.every(allComplete);
      return isComplete(node);
    }

    function hasConditions(node) {
      return isGroup(node) && node.conditions.some(function (c) {
        return isGroup(c) ? hasConditions(c) : true;
      });
    }

    // --- keeping the JSON and the count in step ------------------------------------------

    function changed() {
      touched = true;
      textarea.value = JSON.stringify(state, null, 2);
      jsonError.textContent = "";
      scheduleCount();
    }

    function scheduleCount() {
      clearTimeout(timer);
      timer = setTimeout(count, 350);
    }

    function show(text, isError) {
      box.textContent = text;
      box.classList.toggle("text-red-600", !!isError);
    }

    function count() {
      sampleList.textContent = "";
      if (!hasConditions(state)) { show(T.empty, false); return; }
      if (!allComplete(state)) { show(touched ? T.incomplete : T.empty, false); return; }
      var mine = ++seq;
      show(T.counting, false);
      fetch(box.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ rules: state, segment_id: box.dataset.segmentId || null }),
      })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (mine !== seq) return; // an older answer arrived after a newer request
          if (answer.errors) { show(answer.errors.join("\n"), true); return; }
          show(T.count.replace("%s", answer.count.toLocaleString(lang)), false);
          (answer.sample || []).forEach(function (m) {
            var parts = [m.name, m.place, m.phone, m.stage].filter(Boolean);
            sampleList.appendChild(el("li", { text: "#" + m.id + " " + parts.join(" · ") }));
          });
        })
        .catch(function (err) { if (mine === seq) show(String(err), true); });
    }

    // --- pickers: search tags, categories, products, events ------------------------------

    function lookup(kind, params) {
      var url = box.dataset.lookupUrl + "?kind=" + encodeURIComponent(kind) + "&" + params;
      return fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          var found = answer.results || [];
          labels[kind] = labels[kind] || {};
          found.forEach(function (o) { labels[kind][String(o.value)] = o.label; });
          return found;
        });
    }

    function labelOf(kind, value) {
      return (labels[kind] && labels[kind][String(value)]) || String(value);
    }

    // A list of values as chips, added by typing (Enter) or picking a suggestion.
    function chips(cond, kind, inputType) {
      var values = Array.isArray(cond.value) ? cond.value : [];
      cond.value = values;
      var wrap = el("span", { class: "inline-flex flex-wrap gap-1 items-center" });
      var listId = "kq-list-" + Math.random().toString(36).slice(2);
      var datalist = el("datalist", { id: listId });
      var input = el("input", {
        type: inputType || "text",
        class: INPUT,
        placeholder: T.search,
        "aria-label": T.value,
        list: listId,
      });

      function drawChips() {
        Array.prototype.slice.call(wrap.querySelectorAll(".kq-chip")).forEach(function (n) { n.remove(); });
        values.forEach(function (v, i) {
          var chip = el("span", {
            class: "kq-chip inline-flex items-center gap-1 rounded-default bg-base-100 px-2 py-0.5 text-sm dark:bg-base-800",
            "data-value": String(v),
          }, [
            el("span", { text: kind ? labelOf(kind, v) : String(v) }),
            el("button", {
              type: "button", class: "text-base-500", "aria-label": T.remove + " " + String(v), text: "×",
              onclick: function () { values.splice(i, 1); drawChips(); changed(); },
            }),
          ]);
          wrap.insertBefore(chip, input);
        });
      }

      function add(raw) {
        var text = String(raw).trim();
        if (!text) return;
        var value = text;
        var known = kind && labels[kind] && Object.keys(labels[kind]).filter(function (k) {
          return k === text || labels[kind][k] === text;
        })[0];
        if (known !== undefined) value = known;
        if (values.map(String).indexOf(String(value)) < 0) values.push(value);
        input.value = "";
        drawChips();
        changed();
      }

      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === ",") { event.preventDefault(); add(input.value); }
      });
      input.addEventListener("input", function (event) {
        // Choosing a suggestion replaces the text at once: take it.
        if (event.inputType === "insertReplacementText" || event.inputType === undefined) {
          var picked = Array.prototype.some.call(datalist.options, function (o) { return o.value === input.value; });
          if (picked) { add(input.value); return; }
        }
        if (!kind) return;
        var q = input.value;
        lookup(kind, "q=" + encodeURIComponent(q)).then(function (found) {
          datalist.textContent = "";
          found.forEach(function (o) {
            datalist.appendChild(el("option", { value: String(o.value), label: o.label }));
          });
        });
      });
      input.addEventListener("blur", function () { if (input.value.trim()) add(input.value); });
      wrap.appendChild(input);
      wrap.appendChild(datalist);
      drawChips();
      if (kind && values.length) {
        var unknown = values.filter(function (v) { return !(labels[kind] && labels[kind][String(v)]); });
        if (unknown.length) {
          lookup(kind, "values=" + encodeURIComponent(unknown.join(","))).then(drawChips);
        }
      }
      return wrap;
    }

    function select(options, current, placeholder, onchange, label) {
      var node = el("select", { class: INPUT, "aria-label": label || "" });
      if (placeholder !== null) node.appendChild(el("option", { value: "", text: placeholder || "—" }));
      options.forEach(function (o) {
        var opt = el("option", { value: String(o.value), text: o.label });
        if (String(o.value) === String(current)) opt.selected = true;
        node.appendChild(opt);
      });
      node.addEventListener("change", function () { onchange(node.value); });
      return node;
    }

    function numberOrEmpty(text) {
      if (text === "" || text === null) return "";
      var n = Number(text);
      return isFinite(n) ? n : "";
    }

    function input(type, value, onchange, label, attrs) {
      var node = el("input", Object.assign({ type: type, class: INPUT, "aria-label": label || T.value }, attrs || {}));
      if (value !== undefined && value !== null && value !== "") node.value = value;
      node.addEventListener("input", function () { onchange(node.value); });
      return node;
    }

    // --- one condition ---------------------------------------------------------------------

    function valueEditor(cond) {
      var f = fields[cond.field];
      var op = cond.operator;
      if (!f || !op || NO_VALUE[op]) return null;
      var set = function (v) { cond.value = v; changed(); };
      if (f.type === "number" || (f.type === "date" && /within_days/.test(op))) {
        var step = f.type === "date" ? "1" : "any";
        if (op === "between") {
          var pair = Array.isArray(cond.value) ? cond.value : ["", ""];
          cond.value = pair;
          return el("span", { class: "inline-flex gap-1 items-center" }, [
            input("number", pair[0], function (v) { pair[0] = numberOrEmpty(v); changed(); }, T.value, { step: step }),
            el("span", { text: T.and }),
            input("number", pair[1], function (v) { pair[1] = numberOrEmpty(v); changed(); }, T.value, { step: step }),
          ]);
        }
        return input("number", cond.value, function (v) { set(numberOrEmpty(v)); }, T.value, { step: step, min: f.type === "date" ? "0" : null });
      }
      if (f.type === "date") {
        if (op === "between") {
          var days = Array.isArray(cond.value) ? cond.value : ["", ""];
          cond.value = days;
          return el("span", { class: "inline-flex gap-1 items-center" }, [
            input("date", days[0], function (v) { days[0] = v; changed(); }),
            el("span", { text: T.and }),
            input("date", days[1], function (v) { days[1] = v; changed(); }),
          ]);
        }
        return input("date", cond.value, set);
      }
      if (f.type === "choice") {
        if (LIST_OPS[op]) {
          var chosen = Array.isArray(cond.value) ? cond.value : [];
          cond.value = chosen;
          return el("span", { class: "inline-flex flex-wrap gap-2" }, f.choices.map(function (c) {
            var box = el("input", { type: "checkbox", value: c.value });
            box.checked = chosen.indexOf(c.value) >= 0;
            box.addEventListener("change", function () {
              var at = chosen.indexOf(c.value);
              if (box.checked && at < 0) chosen.push(c.value);
              if (!box.checked && at >= 0) chosen.splice(at, 1);
              changed();
            });
            return el("label", { class: "inline-flex gap-1 items-center text-sm" }, [box, el("span", { text: c.label })]);
          }));
        }
        return select(f.choices, cond.value, "", function (v) { set(v); }, T.value);
      }
      if (f.type === "bool") {
        if (cond.value === undefined) cond.value = true;
        return select([{ value: "true", label: T.yes }, { value: "false", label: T.no }], String(cond.value), null,
          function (v) { set(v === "true"); }, T.value);
      }
      if (f.type === "segment") {
        return select(cat.segments || [], cond.value, "", function (v) { set(v ? Number(v) : ""); }, T.value);
      }
      if (f.type === "tags" || f.type === "set" || LIST_OPS[op]) return chips(cond, f.picker);
      return input("text", cond.value, set);
    }

    function fieldSelect(cond, onchange) {
      var node = el("select", { class: INPUT, "aria-label": T.field, "data-role": "field" });
      node.appendChild(el("option", { value: "", text: T.choose_field }));
      cat.groups.forEach(function (g) {
        var group = el("optgroup", { label: g.label });
        g.fields.forEach(function (f) {
          var opt = el("option", { value: f.field, text: f.label });
          if (f.field === cond.field) opt.selected = true;
          group.appendChild(opt);
        });
        node.appendChild(group);
      });
      node.addEventListener("change", function () { onchange(node.value); });
      return node;
    }

    function renderCondition(cond, parent, index) {
      var f = fields[cond.field];
      var row = el("div", { class: "kq-condition flex flex-wrap gap-2 items-center", "data-field": cond.field || "" });
      if (cond.field && !f) {
        row.appendChild(el("code", { text: JSON.stringify(cond) }));
        row.appendChild(el("span", { class: "text-sm", text: T.unknown_field }));
      } else {
        row.appendChild(fieldSelect(cond, function (name) {
          var next = { field: name };
          var spec = fields[name];
          if (spec) next.operator = spec.operators[0].value;
          if (name === "consent") next.value = true;
          parent.conditions[index] = next;
          render();
          changed();
        }));
        if (f) {
          row.appendChild(select(f.operators, cond.operator, null, function (op) {
            var wasList = !!LIST_OPS[cond.operator];
            cond.operator = op;
            if (NO_VALUE[op]) delete cond.value;
            else if (op === "between" || /within_days/.test(op) || wasList !== !!LIST_OPS[op]) delete cond.value;
            render();
            changed();
          }, T.operator));
          if (cond.field === "consent") {
            row.appendChild(select(cat.channels, cond.channel, T.channel, function (v) { cond.channel = v; changed(); }, T.channel));
            row.appendChild(select(cat.purposes, cond.purpose, T.purpose, function (v) { cond.purpose = v; changed(); }, T.purpose));
          }
          var editor = valueEditor(cond);
          if (editor) row.appendChild(editor);
          if (f.window) {
            var label = cond.field === "browsed_not_bought" ? T.days_required : T.days;
            row.appendChild(el("label", { class: "inline-flex gap-1 items-center text-sm" }, [
              el("span", { text: label }),
              input("number", cond.days, function (v) {
                var n = parseInt(v, 10);
                if (n > 0) cond.days = n; else delete cond.days;
                changed();
              }, label, { min: "1", step: "1", class: INPUT + " w-24" }),
            ]));
          }
        }
      }
      row.appendChild(el("button", {
        type: "button", class: BUTTON, "aria-label": T.remove, text: "×", "data-role": "remove",
        onclick: function () { parent.conditions.splice(index, 1); render(); changed(); },
      }));
      return row;
    }

    // --- groups ----------------------------------------------------------------------------

    function renderGroup(group, parent, index, depth) {
      var box = el("fieldset", {
        class: "kq-group flex flex-col gap-2 border border-base-200 rounded-default p-3 dark:border-base-700" + (depth ? " ml-4" : ""),
      });
      var head = el("div", { class: "flex flex-wrap gap-2 items-center" }, [
        el("span", { class: "text-sm font-semibold", text: T.group }),
        select([{ value: "all", label: T.match_all }, { value: "any", label: T.match_any }], group.match || "all", null,
          function (v) { group.match = v; changed(); }, T.group),
      ]);
      var negate = el("input", { type: "checkbox" });
      negate.checked = !!group.negate;
      negate.addEventListener("change", function () {
        if (negate.checked) group.negate = true; else delete group.negate;
        changed();
      });
      head.appendChild(el("label", { class: "inline-flex gap-1 items-center text-sm" }, [negate, el("span", { text: T.negate })]));
      if (parent) {
        head.appendChild(el("button", {
          type: "button", class: BUTTON, text: "×", "aria-label": T.remove,
          onclick: function () { parent.conditions.splice(index, 1); render(); changed(); },
        }));
      }
      box.appendChild(head);
      group.conditions.forEach(function (child, i) {
        box.appendChild(isGroup(child) ? renderGroup(child, group, i, depth + 1) : renderCondition(child, group, i));
      });
      box.appendChild(el("div", { class: "flex gap-2" }, [
        el("button", {
          type: "button", class: BUTTON, text: "+ " + T.add_condition, "data-role": "add-condition",
          onclick: function () { group.conditions.push({ field: "" }); render(); changed(); },
        }),
        el("button", {
          type: "button", class: BUTTON, text: "+ " + T.add_group, "data-role": "add-group",
          onclick: function () { group.conditions.push({ match: "all", conditions: [{ field: "" }] }); render(); changed(); },
        }),
      ]));
      return box;
    }

    function render() {
      builder.textContent = "";
      builder.appendChild(renderGroup(state, null, 0, 0));
    }

    // Power users edit the JSON: a valid rule redraws the builder.
    textarea.addEventListener("input", function () {
      try {
        state = readTextarea();
      } catch (err) {
        jsonError.textContent = T.invalid_json + " " + err.message;
        return;
      }
      jsonError.textContent = "";
      touched = true;
      render();
      scheduleCount();
    });

    // Incomplete conditions would be refused by the server in English codes: say so here.
    var form = textarea.form;
    if (form) {
      form.addEventListener("submit", function (event) {
        if (state && !allComplete(state)) {
          event.preventDefault();
          touched = true;
          show(T.incomplete, true);
          box.scrollIntoView({ block: "center" });
        }
      });
    }

    try {
      state = readTextarea();
    } catch (err) {
      state = { match: "all", conditions: [] };
      jsonError.textContent = T.invalid_json + " " + err.message;
      details.open = true;
    }
    textarea.value = JSON.stringify(state, null, 2);
    render();
    count();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
