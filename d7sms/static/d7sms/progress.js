/* Sendout page: poll the progress endpoint and move the bar, the counts and the chart; the
   live region reads out each quarter done and the end. When the sendout finishes, the parts
   the server draws (failures, actions) are fetched and swapped in: no reload, focus stays.
   Also asks before any form marked data-confirm is posted. */
(function () {
    "use strict";

    var POLL_MS = 2000;
    var CHART_EVERY = 3;

    function follow(root) {
        var url = root.dataset.progressUrl;
        var chartBox = document.getElementById("d7-chart-box");
        var live = document.getElementById("d7-live");
        var wasDone = root.dataset.done === "1";
        var polls = 0;
        var quarter = -1;

        function update(data) {
            var bar = root.querySelector(".d7-progress");
            Object.keys(data.percent).forEach(function (group) {
                var seg = bar.querySelector('[data-group="' + group + '"]');
                if (seg) { seg.style.width = data.percent[group] + "%"; }
            });
            bar.querySelector(".d7-progress-text").textContent = data.total ? data.done_percent + " %" : "\u2013";
            var status = document.querySelector("#d7-status .d7-badge");
            if (status) {
                status.textContent = data.status_label;
                status.className = "d7-badge d7-" + data.tone;
                status.dataset.status = data.status;
            }
            root.querySelectorAll("tr[data-status]").forEach(function (row) {
                var n = data.counts[row.dataset.status] || 0;
                row.hidden = n === 0;
                row.querySelector("[data-count]").textContent = n;
            });
            root.querySelectorAll("[data-group-count]").forEach(function (cell) {
                cell.textContent = data.groups[cell.dataset.groupCount] || 0;
            });
            // Read out a quarter at a time, and the end: not every poll.
            var q = data.done ? 4 : Math.floor(data.done_percent / 25);
            if (live && q !== quarter) { live.textContent = data.live; quarter = q; }
            root.dataset.done = data.done ? "1" : "0";
        }

        function refreshChart() {
            if (!chartBox) { return Promise.resolve(); }
            return fetch(root.dataset.chartUrl, { credentials: "same-origin" })
                .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
                .then(function (text) {
                    var svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
                    if (svg.nodeName.toLowerCase() !== "svg") { return; }
                    chartBox.replaceChildren(document.importNode(svg, true));
                });
        }

        /* Swap in the regions the server draws once a sendout ends (marked data-refresh),
           giving focus back to the same control if it was inside one of them. */
        function redrawFinished() {
            return fetch(window.location.href, { credentials: "same-origin" })
                .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
                .then(function (html) {
                    var fresh = new DOMParser().parseFromString(html, "text/html");
                    var focused = document.activeElement;
                    var focusId = focused && focused.id;
                    document.querySelectorAll("[data-refresh][id]").forEach(function (region) {
                        var next = fresh.getElementById(region.id);
                        if (!next) { return; }
                        var hadFocus = region.contains(focused);
                        region.replaceChildren.apply(region, Array.prototype.map.call(next.childNodes, function (node) {
                            return document.importNode(node, true);
                        }));
                        if (hadFocus) {
                            var again = focusId && document.getElementById(focusId);
                            (again || live || root).focus();
                        }
                    });
                    confirmForms();
                });
        }

        function settle() {
            root.dataset.settled = "1";  // nothing left to follow; tests wait for this
        }

        function poll() {
            fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
                .then(function (response) {
                    if (!response.ok) { throw new Error(response.status); }
                    return response.json();
                })
                .then(function (data) {
                    update(data);
                    polls += 1;
                    if (data.done) {
                        Promise.all([refreshChart(), redrawFinished()]).catch(function () {}).then(settle);
                        return;
                    }
                    if (polls % CHART_EVERY === 0) { refreshChart(); }
                    window.setTimeout(poll, POLL_MS);
                })
                .catch(function () { window.setTimeout(poll, POLL_MS * 3); });
        }

        if (wasDone) {
            settle();
        } else {
            window.setTimeout(poll, POLL_MS / 2);
        }
    }

    function confirmForms() {
        document.querySelectorAll("form[data-confirm]:not([data-asks])").forEach(function (form) {
            form.dataset.asks = "1";
            form.addEventListener("submit", function (event) {
                if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
            });
        });
    }

    function setup() {
        var root = document.getElementById("d7-follow");
        if (root) { follow(root); }
        confirmForms();
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", setup);
    } else {
        setup();
    }
})();
