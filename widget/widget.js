/*
 * 助企帮帮团 web widget: one <script> tag, optional window.ZhuqiWidget config.
 *
 *   <script>window.ZhuqiWidget = {server: "https://assistant.example", title: "助企帮帮团"};</script>
 *   <script src="https://assistant.example:8080/widget.js" async></script>
 *
 * Speaks Rasa's socket.io protocol (session_request -> session_confirm,
 * user_uttered -> bot_uttered). Every text from the user or the bot is inserted with
 * textContent, never as HTML. The session id and the rendered history live in
 * localStorage, so a reload or a dropped connection continues the same conversation.
 * Every message carries a message_id and stays pending until the server acknowledges it;
 * when the socket comes back (on any replica) the pending ones are sent again, marked
 * `resent`, and the server answers a message whose turn it already holds with that turn's
 * answer instead of a second turn (channels/redelivery.py).
 */
(function () {
  "use strict";
  if (window.__zhuqiWidgetLoaded) return;
  window.__zhuqiWidgetLoaded = true;

  var script = document.currentScript;
  var base = script ? script.src.replace(/[^/]*$/, "") : "./";
  var config = Object.assign({
    server: location.protocol + "//" + location.hostname + ":5005",
    title: "助企帮帮团 · 企业服务专员",
    color: "#c0392b",
    greeting: "您好！我是渝中区助企帮帮团的虚拟企业服务专员，请问您要办什么事？",
    storageKey: "zhuqi-widget"
  }, window.ZhuqiWidget || {});
  var LEVELS = ["非常满意", "满意", "基本满意", "不满意", "非常不满意"];
  var state = load();

  function load() {
    try { return JSON.parse(localStorage.getItem(config.storageKey)) || {history: []}; }
    catch (e) { return {history: []}; }
  }
  function save() {
    state.history = state.history.slice(-100);
    var kept = {session: state.session, open: state.open, history: state.history, handoff: state.handoff,
                staffSeen: state.staffSeen, pending: state.pending};
    try { localStorage.setItem(config.storageKey, JSON.stringify(kept)); } catch (e) { /* private mode */ }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Text with line breaks and links, built from text nodes only. */
  function richText(text) {
    var box = el("div", {"class": "zq-text"});
    String(text).split("\n").forEach(function (line, i) {
      if (i) box.appendChild(el("br"));
      line.split(/(https?:\/\/[^\s<>"]+)/).forEach(function (part) {
        if (/^https?:\/\//.test(part)) {
          box.appendChild(el("a", {href: part, target: "_blank", rel: "noopener noreferrer"}, part));
        } else if (part) {
          box.appendChild(document.createTextNode(part));
        }
      });
    });
    return box;
  }

  function renderCard(card) {
    var box = el("div", {"class": "zq-card", role: "group", "aria-label": "服务卡片：" + (card.title || "")});
    box.appendChild(el("div", {"class": "zq-card-title"}, card.title || ""));
    box.appendChild(el("div", {"class": "zq-card-dept"}, "牵头部门：" + ((card.department || {}).name || "")));
    (card.co_departments || []).length && box.appendChild(el("div", {"class": "zq-card-co"},
      "配合部门：" + card.co_departments.map(function (d) { return d.name; }).join("、")));
    var policies = el("ul", {"class": "zq-card-policies", "aria-label": "适用政策"});
    (card.policies || []).slice(0, 3).forEach(function (p) {
      var cite = p.item ? p.doc + " 第" + p.item + "条" : p.doc;
      var li = el("li");
      li.appendChild(el("strong", {}, cite));
      li.appendChild(document.createTextNode("：" + p.summary));
      policies.appendChild(li);
    });
    if (policies.childNodes.length) { box.appendChild(el("div", {"class": "zq-card-h"}, "适用政策")); box.appendChild(policies); }
    var channels = el("ul", {"class": "zq-card-channels", "aria-label": "办理渠道"});
    (card.channels || []).slice(0, 3).forEach(function (c) {
      var li = el("li");
      li.appendChild(el("strong", {}, c.name));
      li.appendChild(document.createTextNode("：" + c.how));
      channels.appendChild(li);
    });
    box.appendChild(el("div", {"class": "zq-card-h"}, "办理渠道"));
    box.appendChild(channels);
    var figures = el("ul", {"class": "zq-card-figures", "aria-label": "相关数据"});
    (card.sources || []).forEach(function (f) {
      var li = el("li");
      li.appendChild(el("strong", {}, f.cite));
      li.appendChild(document.createTextNode("：" + f.quote));
      figures.appendChild(li);
    });
    if (figures.childNodes.length) { box.appendChild(el("div", {"class": "zq-card-h"}, "相关数据")); box.appendChild(figures); }
    return box;
  }

  var root, list, input, typing, status, socket;
  var HANDOFF_STATUS = {waiting: "排队中，专员接手后会在这里回复您", claimed: "专员正在为您处理"};

  /* The line under the header while a specialist has (or is about to take) the conversation. */
  function showStatus() {
    var h = state.handoff;
    var active = h && h.status !== "resolved";
    status.hidden = !active;
    root.setAttribute("data-handoff", active ? h.status : "none");
    if (!active) return;
    status.textContent = "";
    status.appendChild(el("span", {}, "人工服务 · 案件 #" + h.case_id + " · " + (h.department_name || "") + " · " +
                                      (HANDOFF_STATUS[h.status] || "")));
    // the one message a paused conversation takes: it closes the case and brings the bot back
    var end = el("button", {type: "button", "class": "zq-end"}, "结束人工服务");
    end.addEventListener("click", function () { send("/restart", "结束人工服务"); });
    status.appendChild(end);
  }
  var PENDING_MS = 5 * 60 * 1000;  // an unacknowledged message older than this is not sent again
  state.pending = (state.pending || []).filter(function (p) { return Date.now() - p.ts < PENDING_MS; });

  function stamp(ts) {
    var d = new Date(ts);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function show(entry) {
    var row = el("div", {"class": "zq-msg zq-" + entry.from + (entry.staff ? " zq-staff" : "")});
    if (entry.staff) {
      row.appendChild(el("div", {"class": "zq-staff-label"},
                         (entry.staff.department || "") + " · " + (entry.staff.name || "") + "（工作人员）"));
    }
    if (entry.card) {
      // the answer itself is the visible text; the topic's card (other items, co-responsible
      // units, every channel) stays one tap away
      if (entry.text) row.appendChild(richText(entry.text));
      var more = el("details", {"class": "zq-more"});
      more.appendChild(el("summary", {}, "查看完整答复"));
      more.appendChild(renderCard(entry.card));
      row.appendChild(more);
    } else if (entry.text) {
      row.appendChild(richText(entry.text));
    }
    if (entry.buttons && entry.buttons.length) {
      var bar = el("div", {"class": "zq-buttons", role: "group", "aria-label": "可选项"});
      entry.buttons.forEach(function (b) {
        var button = el("button", {type: "button", "class": "zq-button"}, b.title);
        button.addEventListener("click", function () { send(b.payload, b.title); });
        bar.appendChild(button);
      });
      row.appendChild(bar);
    }
    if (entry.card && entry.from === "bot") row.appendChild(ratingBar(entry));
    row.appendChild(el("time", {"class": "zq-time", datetime: new Date(entry.ts).toISOString()}, stamp(entry.ts)));
    list.appendChild(row);
    list.scrollTop = list.scrollHeight;
  }

  function ratingBar(entry) {
    var bar = el("div", {"class": "zq-rating", role: "group", "aria-label": "为这条回答评价"});
    if (entry.rated) {
      bar.appendChild(el("span", {"class": "zq-rated"}, "已评价：" + entry.rated));
      return bar;
    }
    LEVELS.forEach(function (level, i) {
      var button = el("button", {type: "button", "class": "zq-rate", "aria-label": "评价：" + level}, level);
      button.addEventListener("click", function () {
        var reason = "";
        if (i >= 3) reason = window.prompt("请告诉我们哪里不满意（可不填）：", "") || "";
        socket.emit("rate", {session_id: state.session, level: level, reason: reason,
                             topic: entry.card.topic, department: (entry.card.department || {}).id,
                             answer: entry.text || entry.card.title, answer_ts: entry.ts});
        entry.rated = level;
        save();
        bar.replaceWith(ratingBar(entry));
      });
      bar.appendChild(button);
    });
    return bar;
  }

  function remember(entry) {
    state.history.push(entry);
    save();
    show(entry);
  }

  function send(message, label) {
    message = String(message || "").trim();
    if (!message) return;
    remember({from: "user", text: label || message, ts: Date.now()});
    typing.hidden = !!(state.handoff && state.handoff.status !== "resolved");  // a person answers, in time
    var item = {id: messageId(), message: message, ts: Date.now(), sent: false};
    state.pending.push(item);  // until the server acknowledges it
    save();
    if (socket && socket.connected && state.confirmed) emitPending(item);  // else once the session is confirmed
  }

  function messageId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* Send one pending message (again, marked resent, if it went out on an earlier socket). */
  function emitPending(item) {
    var payload = {message: item.message, session_id: state.session, message_id: item.id};
    if (item.sent) payload.resent = true;
    item.sent = true;
    save();
    socket.emit("user_uttered", payload, function (ack) {
      if (!ack || ack.message_id !== item.id) return;
      state.pending = state.pending.filter(function (p) { return p.id !== item.id; });
      save();
    });
  }

  function onBot(data) {
    typing.hidden = true;
    var custom = data.custom;
    var entry = {from: "bot", ts: Date.now(), text: data.text || "",
                 buttons: data.quick_replies || data.buttons || []};
    if (custom && custom.type === "handoff") {  // the conversation went to (or came back from) a person
      state.handoff = custom;
      save();
      showStatus();
      return;
    }
    if (data.staff && typeof data.staff === "object") {
      var at = typeof data.staff.at === "number" ? data.staff.at : null;
      if (at !== null && state.history.some(function (h) { return h.staff && h.staff.at === at; })) return;  // shown
      entry.staff = {name: String(data.staff.name || ""), department: String(data.staff.department || ""), at: at};
      if (at !== null && at > (state.staffSeen || 0)) state.staffSeen = at;
      if (state.handoff && state.handoff.status === "waiting") { state.handoff.status = "claimed"; showStatus(); }
    }
    if (custom && custom.type === "service_card") {
      // the card belongs to the answer text just before it
      var last = state.history[state.history.length - 1];
      if (last && last.from === "bot" && !last.card && last.text) {
        last.card = custom;
        save();
        list.removeChild(list.lastChild);
        show(last);
        return;
      }
      entry.card = custom;
    }
    if (entry.text || entry.card || entry.buttons.length) remember(entry);
  }

  function connect() {
    socket = window.io(config.server, {path: "/socket.io", transports: ["websocket", "polling"],
                                       reconnection: true, reconnectionDelayMax: 5000});
    socket.on("connect", function () {  // staff_seen: the server sends the staff replies after it
      socket.emit("session_request", {session_id: state.session || null, staff_seen: state.staffSeen || 0});
    });
    socket.on("disconnect", function () { state.confirmed = false; });
    socket.on("session_confirm", function (id) {
      id = typeof id === "object" && id ? id.session_id : id;
      if (state.session !== id) { state.session = id; state.staffSeen = 0; save(); }
      state.confirmed = true;
      root.setAttribute("data-session", id);
      state.pending.slice().forEach(emitPending);  // what no socket has acknowledged, in order
    });
    socket.on("bot_uttered", onBot);
    socket.on("rating_saved", function () { root.setAttribute("data-last-rating", "saved"); });
    socket.on("rating_refused", function () { root.setAttribute("data-last-rating", "refused"); });
  }

  function build() {
    var style = el("link", {rel: "stylesheet", href: base + "widget.css"});
    document.head.appendChild(style);
    root = el("div", {"class": "zq-root", id: "zhuqi-widget"});
    root.style.setProperty("--zq-color", config.color);
    var open = el("button", {type: "button", "class": "zq-open", "aria-label": "打开企业服务咨询", "aria-expanded": "false"}, "企业服务咨询");
    var panel = el("section", {"class": "zq-panel", role: "dialog", "aria-label": config.title});
    panel.hidden = true;
    var header = el("header", {"class": "zq-header"});
    header.appendChild(el("h2", {}, config.title));
    var close = el("button", {type: "button", "class": "zq-close", "aria-label": "关闭"}, "×");
    header.appendChild(close);
    list = el("div", {"class": "zq-list", role: "log", "aria-live": "polite", "aria-label": "对话记录"});
    typing = el("div", {"class": "zq-typing", "aria-live": "polite"}, "正在输入…");
    typing.hidden = true;
    status = el("div", {"class": "zq-status", role: "status"});
    status.hidden = true;
    var form = el("form", {"class": "zq-form"});
    input = el("input", {type: "text", "class": "zq-input", "aria-label": "输入您的问题", placeholder: "输入您的问题，按回车发送", maxlength: "500"});
    var submit = el("button", {type: "submit", "class": "zq-send", "aria-label": "发送"}, "发送");
    form.appendChild(input);
    form.appendChild(submit);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(input.value);
      input.value = "";
      input.focus();
    });
    panel.appendChild(header);
    panel.appendChild(status);
    panel.appendChild(list);
    panel.appendChild(typing);
    panel.appendChild(form);
    root.appendChild(open);
    root.appendChild(panel);
    document.body.appendChild(root);

    function toggle(show) {
      panel.hidden = !show;
      open.setAttribute("aria-expanded", String(show));
      state.open = show;
      save();
      if (show) {
        input.focus();
        requestAnimationFrame(function () { list.scrollTop = list.scrollHeight; });
      } else {
        open.focus();
      }
    }
    open.addEventListener("click", function () { toggle(panel.hidden); });
    close.addEventListener("click", function () { toggle(false); });
    panel.addEventListener("keydown", function (event) { if (event.key === "Escape") toggle(false); });

    if (!state.history.length) state.history.push({from: "bot", text: config.greeting, ts: Date.now()});
    state.history.forEach(show);
    showStatus();
    if (state.open) toggle(true);
    connect();
  }

  function start() {
    if (window.io) return build();
    var loader = el("script", {src: base + "node_modules/socket.io-client/dist/socket.io.min.js"});
    loader.onload = build;
    document.head.appendChild(loader);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
