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
