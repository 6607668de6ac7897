"use strict";

(() => {
  const BOT_NAME = "社区警务助手";
  const ROLE_NAMES = {
    officer: "社区民警",
    auxiliary: "辅警",
    duty_officer: "值班民警",
    duty_account: "值班号",
    leader: "所领导",
    admin: "管理员",
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    persona: $("persona"),
    residentFields: $("resident-fields"),
    residentName: $("resident-name"),
    residentId: $("resident-id"),
    roles: $("persona-roles"),
    chat: $("chat"),
    chatName: $("chat-name"),
    status: $("status"),
    messages: $("messages"),
    error: $("error"),
    composer: $("composer"),
    mention: $("mention"),
    text: $("text"),
    send: $("send"),
    hint: $("hint"),
  };

  let catalog = { groups: [], staff: [] };
  const names = new Map();
  let poller = null;

  const store = {
    get(k, d) {
      try { const v = localStorage.getItem("jingmin." + k); return v === null ? d : v; } catch { return d; }
    },
    set(k, v) {
      try { localStorage.setItem("jingmin." + k, v); } catch { /* storage unavailable */ }
    },
  };

  function staffById(id) {
    return (catalog.staff || []).find((s) => s.id === id);
  }

  function me() {
    const p = el.persona.value;
    if (p.startsWith("staff:")) {
      const s = staffById(p.slice(6));
      if (s) return { id: s.id, name: s.name, roles: s.roles || [], staff: true };
    }
    return { id: el.residentId.value.trim(), name: el.residentName.value.trim(), roles: [], staff: false };
  }

  function currentChat() {
    const v = el.chat.value;
    if (v.startsWith("group:")) {
      const id = v.slice(6);
      const g = (catalog.groups || []).find((x) => x.id === id);
      return { type: "group", id, name: g ? g.name : id };
    }
    return { type: "direct", id: me().id, name: "与机器人私聊 (" + BOT_NAME + ")" };
  }

  function showError(msg) {
    el.error.textContent = msg;
    el.error.hidden = !msg;
  }

  function setStatus(text, cls) {
    el.status.textContent = text;
    el.status.className = "status" + (cls ? " " + cls : "");
  }

  function fillSelects() {
    for (const s of catalog.staff || []) {
      const o = document.createElement("option");
      o.value = "staff:" + s.id;
      const roles = (s.roles || []).map((r) => ROLE_NAMES[r] || r).join("/");
      o.textContent = s.name + (roles ? " · " + roles : "") + " (" + s.id + ")";
      el.persona.append(o);
      names.set(s.id, s.name);
    }
    for (const g of catalog.groups || []) {
      const o = document.createElement("option");
      o.value = "group:" + g.id;
      o.textContent = g.name + " (" + g.id + ")";
      el.chat.append(o);
    }
    const d = document.createElement("option");
    d.value = "direct";
    d.textContent = "与机器人私聊 (direct)";
    el.chat.append(d);
  }

  function restoreChoices() {
    el.residentName.value = store.get("residentName", el.residentName.value);
    el.residentId.value = store.get("residentId", el.residentId.value);
    const p = store.get("persona", "resident");
    if ([...el.persona.options].some((o) => o.value === p)) el.persona.value = p;
    const c = store.get("chat", "");
    if ([...el.chat.options].some((o) => o.value === c)) el.chat.value = c;
  }

  function updateChrome() {
    const who = me();
    const chat = currentChat();
    el.residentFields.hidden = who.staff;
    el.roles.hidden = !who.staff;
    el.roles.textContent = who.staff ? who.roles.map((r) => ROLE_NAMES[r] || r).join(" / ") || "工作人员" : "";
    el.chatName.textContent = chat.name;
    el.mention.hidden = chat.type !== "group";
    if (chat.type === "group" && !who.staff) {
      el.hint.textContent = "提示：点 @" + BOT_NAME + " 或输入“@" + BOT_NAME + " 问题”向民警提问；紧急情况请直接拨打 110。";
    } else if (chat.type === "group") {
      el.hint.textContent = "以工作人员身份在群里发言 (speaking in the group as staff)。";
    } else if (who.staff) {
      el.hint.textContent = "回复工单：#编号 内容，例如“#1 马上到” (reply: #ticket text)。";
    } else {
      el.hint.textContent = "与机器人私聊 (direct chat with the bot)。";
    }
  }

  function rememberName(id, name) {
    if (id && name && id !== "bot") names.set(id, name);
  }

  function appendText(parent, text) {
    // A mention runs to the next space or punctuation: "并@居民；" marks
    // "@居民" only.
    const re = /(^|[^A-Za-z0-9])([@＠][^\s@＠\u2005，。；：、！？“”‘’（）《》【】,;:!?()<>"']+)/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const start = m.index + m[1].length;
      if (start > last) parent.append(document.createTextNode(text.slice(last, start)));
      const span = document.createElement("span");
      span.className = "at";
      span.textContent = m[2];
      parent.append(span);
      last = start + m[2].length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function timeOf(s) {
    const d = new Date(s);
    if (isNaN(d)) return "";
    const time = d.toLocaleTimeString("zh-CN", { hour12: false });
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString("zh-CN", { month: "numeric", day: "numeric" }) + " " + time;
  }

  // appendInline renders a line's inline markdown: **bold** and `code`,
  // the rest as text with @-mentions marked.
  function appendInline(parent, text) {
    const re = /\*\*(.+?)\*\*|`([^`]+)`/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) appendText(parent, text.slice(last, m.index));
      const e = document.createElement(m[1] !== undefined ? "strong" : "code");
      if (m[1] !== undefined) appendText(e, m[1]);
      else e.textContent = m[2];
      parent.append(e);
      last = re.lastIndex;
    }
    if (last < text.length) appendText(parent, text.slice(last));
  }

  // renderMarkdown builds a markdown message as the platforms show one:
  // headings, lists, block quotes, rules, bold, and each line on a line of
  // its own. Every piece of text becomes a text node, never markup, so
  // nothing in a message can add elements of its own; the hub sends
  // residents' words with their syntax characters made full-width.
  function renderMarkdown(parent, text) {
    let list = null;
    let quote = null;
    let para = null;
    const blank = () => { list = null; quote = null; para = null; };
    const block = (tag) => {
      const e = document.createElement(tag);
      parent.append(e);
      return e;
    };
    for (const raw of text.replace(/\r\n?/g, "\n").split("\n")) {
      const line = raw.replace(/\s+$/, "");
      let m;
      if (line.trim() === "") {
        blank();
      } else if ((m = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?$/.exec(line))) {
        blank();
        appendInline(block("h" + m[1].length), m[2]);
      } else if (/^ {0,3}([-*_])(\s*\1){2,}$/.test(line)) {
        blank();
        block("hr");
      } else if ((m = /^\s*(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/.exec(line))) {
        const tag = m[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          blank();
          list = block(tag);
          if (m[2] && m[2] !== "1") list.start = Number(m[2]);
        }
        const li = document.createElement("li");
        appendInline(li, m[3]);
        list.append(li);
      } else if ((m = /^ {0,3}>\s?(.*)$/.exec(line))) {
        if (!quote) {
          blank();
          quote = block("blockquote");
        } else {
          quote.append(document.createElement("br"));
        }
        appendInline(quote, m[1]);
      } else {
        if (!para) {
          blank();
          para = block("p");
        } else {
          para.append(document.createElement("br"));
        }
        appendInline(para, line);
      }
    }
  }

  function renderLine(line, who, chat) {
    const div = document.createElement("div");
    div.className = "msg" + (line.bot ? " bot" : "") + (!line.bot && line.from === who.id ? " mine" : "");
    div.dataset.seq = String(line.seq);

    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = line.from_name || line.from || "?";
    meta.append(name);
    if (line.bot) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = "机器人";
      meta.append(b);
    }
    const t = document.createElement("time");
    t.textContent = timeOf(line.time);
    meta.append(t);
    div.append(meta);

    const markdown = line.format === "markdown";
    const body = document.createElement("div");
    body.className = "body" + (markdown ? " md" : "");
    if (line.at && line.at.length) {
      const ats = document.createElement("span");
      ats.className = "ats";
      for (const id of line.at) {
        const a = document.createElement("span");
        a.className = "at";
        a.dataset.user = id;
        a.textContent = "@" + (names.get(id) || id) + " ";
        ats.append(a);
      }
      body.append(ats);
    }
    if (markdown) renderMarkdown(body, line.text || "");
    else appendText(body, line.text || "");
    div.append(body);

    // Only the hub knows which tickets the viewer may still answer (open,
    // of their station): it marks those lines, and only those get a button.
    if (line.bot && line.ticket > 0) div.dataset.ticket = String(line.ticket);
    if (line.bot && line.open && line.ticket > 0 && chat.type === "direct" && who.staff) {
      const n = String(line.ticket);
      const r = document.createElement("button");
      r.type = "button";
      r.className = "reply";
      r.dataset.ticket = n;
      r.textContent = "回复 #" + n;
      r.addEventListener("click", () => {
        el.text.value = "#" + n + " ";
        el.text.focus();
      });
      div.append(r);
    }
    return div;
  }

  function showLines(lines, who, chat) {
    const box = el.messages;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const empty = box.querySelector(".empty");
    if (empty && lines.length) empty.remove();
    for (const l of lines) rememberName(l.from, l.from_name);
    for (const l of lines) {
      // A line about a ticket that no longer takes an answer (closed just
      // now) takes the reply buttons of that ticket's earlier lines away.
      if (l.bot && l.ticket > 0 && !l.open) {
        for (const b of box.querySelectorAll('button.reply[data-ticket="' + l.ticket + '"]')) b.remove();
      }
      box.append(renderLine(l, who, chat));
    }
    if (atBottom || lines.some((l) => !l.bot && l.from === who.id)) box.scrollTop = box.scrollHeight;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  async function errorText(resp) {
    try {
      const j = await resp.json();
      if (j && j.error) return j.error;
    } catch { /* not JSON */ }
    return "HTTP " + resp.status;
  }

  // pollLoop shows a chat's messages as they come. The first request asks
  // for what there is without waiting, so an empty chat is live at once
  // (and shows its history); the later ones long-poll.
  async function pollLoop(ctrl, chat, who) {
    let after = 0;
    let backoff = 0;
    let wait = 0;
    while (!ctrl.signal.aborted) {
      try {
        const url = "/api/chats/" + chat.type + "/" + encodeURIComponent(chat.id) + "?after=" + after + "&wait=" + wait;
        const resp = await fetch(url, { signal: ctrl.signal, cache: "no-store" });
        if (!resp.ok) throw new Error(await errorText(resp));
        const lines = await resp.json();
        if (ctrl.signal.aborted) return;
        const fresh = lines.filter((l) => l.seq > after);
        if (fresh.length) {
          after = fresh[fresh.length - 1].seq;
          showLines(fresh, who, chat);
        }
        setStatus("在线 live", "ok");
        backoff = 0;
        wait = 20;
      } catch (e) {
        if (ctrl.signal.aborted) return;
        backoff = Math.min(backoff ? backoff * 2 : 500, 5000);
        setStatus("连接中断，重试中 reconnecting… (" + e.message + ")", "bad");
        await sleep(backoff, ctrl.signal);
      }
    }
  }

  function restart() {
    if (poller) poller.abort();
    poller = new AbortController();
    const who = me();
    const chat = currentChat();
    updateChrome();
    showError("");
    el.messages.replaceChildren();
    const empty = document.createElement("div");
    empty.className = "empty";
    el.messages.append(empty);
    if (!chat.id) {
      empty.textContent = "请先填写住户 ID (enter a resident id first)";
      setStatus("", "");
      return;
    }
    empty.textContent = "暂无消息 (no messages yet)";
    setStatus("连接中 connecting…", "");
    pollLoop(poller, chat, who);
  }

  async function send() {
    const text = el.text.value;
    if (!text.trim()) return;
    const who = me();
    const chat = currentChat();
    const body = {
      chat_id: chat.id,
      chat_type: chat.type,
      sender_id: who.id,
      sender_name: who.name,
      text,
    };
    el.send.disabled = true;
    try {
      const resp = await fetch("/api/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (resp.status === 202) {
        showError("");
        el.text.value = "";
      } else {
        showError("发送失败 (" + resp.status + ")：" + (await errorText(resp)));
      }
    } catch (e) {
      showError("发送失败，网络错误：" + e.message);
    } finally {
      el.send.disabled = false;
      el.text.focus();
    }
  }

  function bind() {
    el.persona.addEventListener("change", () => {
      store.set("persona", el.persona.value);
      restart();
    });
    el.chat.addEventListener("change", () => {
      store.set("chat", el.chat.value);
      restart();
    });
    el.residentName.addEventListener("change", () => {
      store.set("residentName", el.residentName.value);
      rememberName(el.residentId.value.trim(), el.residentName.value.trim());
    });
    el.residentId.addEventListener("change", () => {
      store.set("residentId", el.residentId.value);
      restart();
    });
    el.mention.addEventListener("click", () => {
      const tag = "@" + BOT_NAME + " ";
      if (!el.text.value.includes("@" + BOT_NAME)) el.text.value = tag + el.text.value;
      el.text.focus();
      el.text.setSelectionRange(el.text.value.length, el.text.value.length);
    });
    el.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      send();
    });
    el.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.isComposing || e.keyCode === 229)) e.preventDefault();
    });
  }

  async function start() {
    bind();
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      try {
        const resp = await fetch("/api/catalog", { cache: "no-store" });
        if (!resp.ok) throw new Error(await errorText(resp));
        catalog = await resp.json();
        break;
      } catch (e) {
        showError("无法读取群和人员列表 (catalog)：" + e.message + "，重试中…");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    fillSelects();
    restoreChoices();
    document.body.dataset.ready = "1";
    restart();
  }

  start();
})();
