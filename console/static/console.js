// The Now page's board follows the server's stream (server-sent events):
// each event carries the board re-rendered by the server.
(function () {
  var board = document.getElementById("board");
  if (!board || !window.EventSource) return;
  var live = document.getElementById("live");
  var es = new EventSource(board.dataset.stream);
  es.addEventListener("board", function (e) {
    board.innerHTML = e.data;
    if (live) { live.className = "live ok"; live.textContent = "实时"; }
  });
  es.addEventListener("signedout", function () {
    es.close();
    window.location = "/signin?why=idle";
  });
  es.onerror = function () { if (live) { live.className = "live"; live.textContent = "重连中"; } };
})();

// A broadcast being sent: its progress section is fetched again every two
// seconds (the server renders it) until the broadcast is no longer sending.
// The actions above it (retry) follow on the next visit.
(function () {
  var box = document.getElementById("progress");
  if (!box || !box.dataset.live) return;
  var timer = setInterval(function () {
    fetch(box.dataset.live, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (html) {
      box.innerHTML = html;
      if (box.querySelector("[data-finished]")) clearInterval(timer);
    }).catch(function () { clearInterval(timer); });
  }, 2000);
})();
