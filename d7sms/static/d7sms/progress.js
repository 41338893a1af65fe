/* Sendout page: poll the progress endpoint and move the bar, the counts and the chart.
   Also asks before any form marked data-confirm is posted. */
(function () {
    "use strict";

    var POLL_MS = 2000;
    var CHART_EVERY = 3;

    function follow(root) {
        var url = root.dataset.progressUrl;
        var chart = document.getElementById("d7-chart");
        var wasDone = root.dataset.done === "1";
        var polls = 0;

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
            root.dataset.done = data.done ? "1" : "0";
        }

        function refreshChart() {
            if (chart) { chart.src = root.dataset.chartUrl + "?t=" + Date.now(); }
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
                        // Reload once so the failed recipients and every count are drawn by the server.
                        if (!wasDone) { window.setTimeout(function () { window.location.reload(); }, 600); }
                        return;
                    }
                    if (polls % CHART_EVERY === 0) { refreshChart(); }
                    window.setTimeout(poll, POLL_MS);
                })
                .catch(function () { window.setTimeout(poll, POLL_MS * 3); });
        }

        if (wasDone) {
            root.dataset.settled = "1";  // nothing left to follow; tests wait for this
        } else {
            window.setTimeout(poll, POLL_MS / 2);
        }
    }

    function confirmForms() {
        document.querySelectorAll("form[data-confirm]").forEach(function (form) {
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
