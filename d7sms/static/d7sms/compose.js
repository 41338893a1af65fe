/* Compose page: the live length counter and showing only the fields that apply. */
(function () {
    "use strict";

    function setup() {
        var form = document.getElementById("d7sms-compose");
        if (!form) { return; }
        var alphabet = JSON.parse(document.getElementById("d7sms-gsm7").textContent);
        var basic = new Set(Array.from(alphabet[0]));
        var extension = new Set(Array.from(alphabet[1]));
        var sizes = {
            gsm: [+form.dataset.gsm7Single, +form.dataset.gsm7Multi],
            ucs: [+form.dataset.ucs2Single, +form.dataset.ucs2Multi]
        };
        var content = document.getElementById("id_content");
        var hex = document.getElementById("id_hex_content");
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

        function showText() {
            var info = analyse(content.value);
            counter.textContent = "";
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
            show("d7-row-hex", isBinary);
            show("d7-row-coding", isBinary);
            show("d7-row-hex-counter", isBinary);
            if (isBinary) { showHex(); } else { showText(); }
            var later = form.querySelector("input[name=when]:checked");
            later = later && later.value === "later";
            show("d7-row-schedule", later);
            show("d7-row-where", later);
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
