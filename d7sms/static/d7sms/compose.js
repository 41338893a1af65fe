/* Compose page: the live length counter, merge fields, saved templates, and showing only the
   fields that apply. */
(function () {
    "use strict";

    /* Without a time zone in the staff member's settings, schedules are read in the browser's:
       it is sent with the form, and the field's help says so. */
    function useBrowserZone() {
        var input = document.getElementById("d7-time-zone");
        var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (!input || input.dataset.source !== "site" || !zone) { return; }
        input.value = zone;
        var help = document.querySelector("#id_schedule_at_helptext div");
        if (help) { help.textContent = input.dataset.browserHelp.replace("{tz}", zone); }
    }

    function setup() {
        var form = document.getElementById("d7sms-compose");
        if (!form) { return; }
        useBrowserZone();
        var alphabet = JSON.parse(document.getElementById("d7sms-gsm7").textContent);
        var basic = new Set(Array.from(alphabet[0]));
        var extension = new Set(Array.from(alphabet[1]));
        var sizes = {
            gsm: [+form.dataset.gsm7Single, +form.dataset.gsm7Multi],
            ucs: [+form.dataset.ucs2Single, +form.dataset.ucs2Multi]
        };
        var content = document.getElementById("id_content");
        var hex = document.getElementById("id_hex_content");
        var footer = document.getElementById("id_opt_out_footer");
        var binary = document.getElementById("id_binary");
        var counter = document.getElementById("d7-counter");
        var hexCounter = document.getElementById("d7-hex-counter");

        // Mirrors d7sms.encoding.analyse: two-unit characters are never split across parts.
        function analyse(text) {
            var chars = Array.from(text);
            var gsm = chars.every(function (c) { return basic.has(c) || extension.has(c); });
            var size = gsm ? sizes.gsm : sizes.ucs;
            var cost = function (c) { return gsm ? (extension.has(c) ? 2 : 1) : (c.length); };
            var units = 0, wide = [], seen = new Set();
            chars.forEach(function (c) {
                units += cost(c);
                var special = gsm ? extension.has(c) : !(basic.has(c) || extension.has(c));
                if (special && !seen.has(c)) { seen.add(c); wide.push(c); }
            });
            var parts = 0;
            if (units > 0 && units <= size[0]) {
                parts = 1;
            } else if (units > size[0]) {
                parts = 1;
                var used = 0;
                chars.forEach(function (c) {
                    var n = cost(c);
                    if (used + n > size[1]) { parts += 1; used = 0; }
                    used += n;
                });
            }
            var capacity = parts > 1 ? size[1] * parts : size[0];
            return { chars: chars.length, gsm: gsm, units: units, parts: parts, capacity: capacity, special: wide };
        }

        function code(c) {
            var el = document.createElement("code");
            el.textContent = c === "\n" ? "\u21b5" : c;
            return el;
        }

        // An uploaded list sends the few real rows that make its longest messages (for each
        // column, the row with its longest value, and with its longest value outside GSM-7), so
        // the counter can show the longest message a recipient will actually get.
        var columnsData = document.getElementById("d7sms-columns");
        var columns = columnsData ? JSON.parse(columnsData.textContent) : null;
        var byName = {};
        if (columns) { columns.columns.forEach(function (name, i) { byName[name] = i; }); }

        // Mirrors d7sms.merge.compile_template: {{ and }} are braces, {name} a field.
        function parse(text) {
            var pieces = [""], i = 0;
            while (i < text.length) {
                var c = text[i];
                if (c === "{" && text[i + 1] === "{") { pieces[pieces.length - 1] += "{"; i += 2; continue; }
                if (c === "}" && text[i + 1] === "}") { pieces[pieces.length - 1] += "}"; i += 2; continue; }
                if (c === "}") { return { error: "the brace at position " + (i + 1) + " closes nothing; write }} for a literal brace" }; }
                if (c === "{") {
                    var end = text.indexOf("}", i + 1), open = text.indexOf("{", i + 1);
                    if (end < 0 || (open >= 0 && open < end)) {
                        return { error: "the brace at position " + (i + 1) + " is not closed; write {{ for a literal brace" };
                    }
                    pieces.push(text.slice(i + 1, end).trim(), "");
                    i = end + 1;
                    continue;
                }
                pieces[pieces.length - 1] += c;
                i += 1;
            }
            return { pieces: pieces };
        }

        function render(pieces, pick) {
            return pieces.map(function (p, i) { return i % 2 ? pick(p) : p; }).join("");
        }

        // Each message carries the opt-out footer on its own line, as the server adds it.
        function withFooter(text) {
            var extra = footer ? footer.value.trim() : "";
            return extra ? text + "\n" + extra : text;
        }

        function longestMessage(text) {
            var parsed = parse(text);
            if (parsed.error) { return parsed; }
            var names = parsed.pieces.filter(function (p, i) { return i % 2; });
            var unknown = names.filter(function (n) { return !(n in byName); });
            if (unknown.length) { return { unknown: unknown }; }
            var best = null;
            columns.rows.forEach(function (row) {
                // A row missing a value the text needs is left out, so it sets no length.
                if (names.some(function (n) { return !row[byName[n]].trim(); })) { return; }
                var info = analyse(withFooter(render(parsed.pieces, function (n) { return row[byName[n]]; })));
                if (!best || info.parts > best.parts || (info.parts === best.parts && info.units > best.units)) { best = info; }
            });
            best = best || analyse(withFooter(render(parsed.pieces, function () { return ""; })));
            best.fields = names.length;
            return { info: best };
        }

        function showText() {
            var info;
            if (columns) {
                var found = longestMessage(content.value);
                if (!found.info) {
                    counter.textContent = found.error ? "Template problem: " + found.error :
                        "Not a column of the file: " + found.unknown.map(function (n) { return "{" + n + "}"; }).join(", ");
                    counter.classList.add("d7-counter-bad");
                    return;
                }
                counter.classList.remove("d7-counter-bad");
                info = found.info;
            } else {
                info = analyse(withFooter(content.value));
            }
            counter.textContent = "";
            if (columns && info.fields) {
                counter.appendChild(document.createTextNode("Longest message a recipient gets: "));
            }
            var strong = document.createElement("strong");
            strong.textContent = info.chars + (info.chars === 1 ? " character" : " characters");
            counter.appendChild(strong);
            counter.appendChild(document.createTextNode(
                " \u00b7 " + (info.gsm ? "GSM-7" : "UCS-2 (Unicode)") +
                " \u00b7 " + info.parts + (info.parts === 1 ? " part" : " parts") +
                " \u00b7 " + info.units + " of " + info.capacity + " units used"
            ));
            if (info.special.length) {
                var note = document.createElement("span");
                note.className = "d7-wide";
                note.appendChild(document.createTextNode(
                    info.gsm ? " \u00b7 cost two: " : " \u00b7 not in GSM-7, so the whole message is UCS-2: "
                ));
                info.special.slice(0, 12).forEach(function (c) {
                    note.appendChild(code(c));
                    note.appendChild(document.createTextNode(" "));
                });
                counter.appendChild(note);
            }
        }

        function showHex() {
            var digits = hex.value.replace(/\s+/g, "");
            var octets = Math.floor(digits.length / 2);
            var parts = octets === 0 ? 0 : (octets <= 140 ? 1 : Math.ceil(octets / 134));
            hexCounter.textContent = octets + (octets === 1 ? " byte" : " bytes") + " \u00b7 " +
                parts + (parts === 1 ? " part" : " parts") +
                (/[^0-9a-fA-F\s]/.test(hex.value) || digits.length % 2 ? " \u00b7 not valid hex yet" : "");
        }

        function show(id, visible) {
            var row = document.getElementById(id);
            if (row) { row.hidden = !visible; }
        }

        function refresh() {
            var isBinary = binary.checked;
            show("d7-row-content", !isBinary);
            show("d7-row-counter", !isBinary);
            show("d7-row-footer", !isBinary);
            show("d7-row-hex", isBinary);
            show("d7-row-coding", isBinary);
            show("d7-row-hex-counter", isBinary);
            if (isBinary) { showHex(); } else { showText(); }
            var later = form.querySelector("input[name=when]:checked");
            later = later && later.value === "later";
            show("d7-row-schedule", later);
            show("d7-row-where", later);
        }

        form.querySelectorAll(".d7-merge[data-field]").forEach(function (button) {
            button.addEventListener("click", function () {
                var field = "{" + button.dataset.field + "}";
                var start = content.selectionStart, end = content.selectionEnd;
                content.setRangeText(field, start, end, "end");
                content.focus();
                refresh();
            });
        });

        var picker = document.getElementById("id_template");
        var saved = JSON.parse(document.getElementById("d7sms-templates").textContent);
        if (picker) {
            picker.addEventListener("change", function () {
                var chosen = saved.filter(function (t) { return t.name === picker.value; })[0];
                if (!chosen) { return; }
                content.value = chosen.text;
                if (chosen.sender) { document.getElementById("id_sender").value = chosen.sender; }
                binary.checked = false;
                refresh();
            });
        }

        // Choosing a file reads it at once, so its columns can be used while writing.
        var upload = document.getElementById("id_upload");
        var readColumns = document.getElementById("d7-read-columns");
        if (upload && readColumns) {
            upload.addEventListener("change", function () {
                if (upload.files && upload.files.length) { readColumns.click(); }
            });
        }

        form.addEventListener("input", refresh);
        form.addEventListener("change", refresh);
        refresh();
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", setup);
    } else {
        setup();
    }
})();
