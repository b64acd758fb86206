/* 民芯对讲 consoles (officer and unit): plain JavaScript, no build step, no external assets.
 *
 * Data comes from the JSON API (/api/v1/messaging, the page's session cookie; writes carry the
 * X-CSRF-Token header). Live updates come over the WebSocket /ws (protocol v1): the browser's
 * cookie authenticates it; after "ready" the client resumes every channel from the cursor kept in
 * sessionStorage, so a reconnect gets exactly what was missed; frames are de-duplicated by
 * (channel_id, seq). Every text shown is set with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var cfgEl = document.getElementById("mx-config");
  if (!cfgEl) return;
  var CFG = JSON.parse(cfgEl.textContent);
  var S = CFG.strings;
  var API = CFG.api;
  var IS_UNIT = CFG.console === "unit";
  var CSRF = (function () {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  })();
  var HISTORY_PAGE = 50;
  var COLON = document.documentElement.lang === "en" ? ": " : "：";

  // ---- small helpers ---------------------------------------------------------------------------

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = v;
        else if (k === "class") node.className = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
    return node;
  }

  function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); return node; }

  var timeFmt = new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false
  });
  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : timeFmt.format(d);
  }
  function isPast(iso) { return !!iso && new Date(iso).getTime() < Date.now(); }

  function debounce(fn, ms) {
    var timers = {};
    return function (key) {
      var k = String(key);
      clearTimeout(timers[k]);
      var args = arguments;
      timers[k] = setTimeout(function () { delete timers[k]; fn.apply(null, args); }, ms);
    };
  }

  function storageGet(store, key, fallback) {
    try { var v = store.getItem(key); return v ? JSON.parse(v) : fallback; } catch (e) { return fallback; }
  }
  function storageSet(store, key, value) {
    try { store.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: live without memory */ }
  }

  var toastBox = el("div", { class: "mx-toast", role: "alert", "aria-live": "assertive" });
  document.body.appendChild(toastBox);
  function toast(text, kind) {
    var item = el("div", { class: "mx-toast-item" + (kind ? " mx-toast-" + kind : ""), text: text });
    toastBox.appendChild(item);
    setTimeout(function () { if (item.parentNode) item.parentNode.removeChild(item); }, 5000);
  }

  function api(method, path, body, isForm) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      if (isForm) init.body = body;
      else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    }
    return fetch(path, init)
      .then(function (resp) {
        if (resp.status === 401) { sessionEnded(); throw new Error(S.session_ended); }
        return resp.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!resp.ok) {
            var err = (data && data.error) || {};
            var detail = err.details && err.details[0] && err.details[0].message;
            var e2 = new Error(detail ? err.message + COLON + detail : err.message || resp.status + " " + resp.statusText);
            e2.status = resp.status;
            throw e2;
          }
          return data;
        });
      });
  }
  function fail(err) { toast(S.error + (err && err.message ? err.message : String(err)), "error"); }
  function items(data) { return (data && (data.items || data)) || []; }

  var ended = false;
  function sessionEnded() {
    if (ended) return;
    ended = true;
    setLive("offline", S.session_ended);
    setTimeout(function () { location.href = "/login?next=" + encodeURIComponent(location.pathname); }, 1500);
  }

  // ---- state -----------------------------------------------------------------------------------

  var CURSOR_KEY = "eqian.mx.cursors." + CFG.user_id;
  var READ_KEY = "eqian.mx.read." + CFG.user_id;
  var state = {
    channels: {},       // id -> {id, kind, name, last_seq}
    order: [],
    current: null,      // open channel id
    messages: {},       // channel id -> {seq: message}
    byId: {},           // message id -> message (for reply quotes)
    loaded: {},         // channel id -> lowest seq loaded (history window)
    cursors: storageGet(sessionStorage, CURSOR_KEY, {}),
    readSeq: storageGet(localStorage, READ_KEY, {}),
    instructions: {},   // id -> normalized instruction (with counts)
    boardCurrent: null,
    inbox: {},          // unit: id -> normalized instruction
    assists: {},
    assistCurrent: null,
    assistByChannel: {}, // assistance channel id -> assistance id
    replyTo: null,
    pane: null
  };

  function seen(channelId, seq) {
    var m = state.messages[channelId];
    return !!(m && m[seq]);
  }
  function advanceCursor(channelId, seq) {
    var key = String(channelId);
    if (!(state.cursors[key] >= seq)) {
      state.cursors[key] = seq;
      storageSet(sessionStorage, CURSOR_KEY, state.cursors);
    }
  }

  // ---- live connection -------------------------------------------------------------------------

  var liveEl = $("#mx-live");
  function setLive(kind, text) {
    if (!liveEl) return;
    liveEl.className = "mx-live mx-live-" + kind;
    liveEl.textContent = text;
  }

  var ws = null, attempt = 0, pingTimer = null, pongTimer = null, retryTimer = null, pausedUntil = 0;
  function wsUrl() { return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + CFG.ws; }

  function connect() {
    if (ended) return;
    clearTimeout(retryTimer);
    if (Date.now() < pausedUntil) { retryTimer = setTimeout(connect, pausedUntil - Date.now()); return; }
    setLive(attempt ? "retry" : "off", attempt ? S.reconnecting : S.connecting);
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws = sock;
    sock.onmessage = function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      onFrame(frame);
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      clearInterval(pingTimer); clearTimeout(pongTimer);
      if (ev.code === 4401 || ev.code === 4001) { sessionEnded(); return; }
      if (ev.code === 4403) { setLive("offline", S.offline); return; }
      scheduleReconnect();
    };
  }
  function scheduleReconnect() {
    attempt += 1;
    if (attempt >= 3) startPolling();
    var delay = Math.min(15000, 500 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
    setLive("retry", S.reconnecting);
    retryTimer = setTimeout(connect, delay);
  }
  // Without a socket (a proxy that refuses WebSocket, a long outage) the console keeps up over
  // HTTP every 10 s: channel heads, the open conversation after its cursor, inbox or board.
  var pollTimer = null;
  function startPolling() {
    if (pollTimer || ended) return;
    pollTimer = setInterval(poll, 10000);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }
  function poll() {
    if (ws && ws.readyState === 1) { stopPolling(); return; }
    api("GET", API + "/channels?limit=500").then(function (data) {
      items(data).forEach(mergeChannel);
      var id = state.current;
      if (id) {
        var loaded = Object.keys(state.messages[id] || {}).map(Number);
        var after = state.cursors[id] !== undefined ? state.cursors[id] : Math.max.apply(null, [0].concat(loaded));
        return api("GET", API + "/channels/" + id + "/messages?after_seq=" + after + "&limit=200").then(function (page) {
          items(page).forEach(function (m) { m.channel_id = m.channel_id || Number(id); onMessage(m, true); });
        });
      }
    }).then(function () {
      renderChannels();
      if (IS_UNIT) loadInbox();
      else if (state.boardCurrent) { refreshInstruction(state.boardCurrent); loadReceipts(state.boardCurrent); }
    }).catch(function () { /* still offline: the next round tries again */ });
  }

  function wsSend(obj) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(obj)); return true; }
    return false;
  }
  function startHeartbeat() {
    clearInterval(pingTimer);
    pingTimer = setInterval(function () {
      if (!wsSend({ type: "ping" })) return;
      clearTimeout(pongTimer);
      pongTimer = setTimeout(function () { if (ws) ws.close(4000, "no pong"); }, 10000);
    }, 25000);
  }
  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });

  function onFrame(f) {
    switch (f.type) {
      case "ready":
        attempt = 0;
        stopPolling();
        setLive("on", S.live);
        startHeartbeat();
        (f.channels || []).forEach(function (c) {
          mergeChannel(c);
          // A channel met for the first time is live from here on; its history comes over HTTP.
          if (state.cursors[String(c.id)] === undefined) advanceCursor(c.id, c.last_seq || 0);
        });
        renderChannels();
        var cursors = {};
        Object.keys(state.cursors).forEach(function (k) { if (state.channels[k]) cursors[k] = state.cursors[k]; });
        wsSend({ type: "resume", cursors: cursors });
        break;
      case "resumed":
        break;
      case "channel":
        // A channel created while connected (a direct conversation, a group, an assistance request);
        // its messages so far follow as message frames, so they count as unread.
        if (f.channel && !state.channels[String(f.channel.id)]) {
          if (state.readSeq[String(f.channel.id)] === undefined) state.readSeq[String(f.channel.id)] = 0;
          mergeChannel(f.channel);
          renderChannels();
        }
        break;
      case "message":
        onMessage(f, true);
        break;
      case "progress":
        onProgress(f);
        break;
      case "acked":
        markAcked(f.instruction_id, null);
        break;
      case "pong":
        clearTimeout(pongTimer);
        break;
      case "error":
        if (f.message) toast(S.error + f.message, "error");
        break;
      case "feed":
        break;
      default:
        if (f.type && String(f.type).indexOf("assist") === 0) onAssistanceEvent(f.assistance_id || f.id, null, true);
    }
  }

  // ---- channels and messages -------------------------------------------------------------------

  var KIND_LABELS = {
    station: S.channel_station, category: S.channel_category, service_point: S.channel_service_point,
    group: S.channel_group, direct: S.channel_direct, assistance: S.channel_assistance
  };

  function mergeChannel(c) {
    var id = String(c.id);
    var old = state.channels[id];
    var merged = old || { id: c.id };
    ["kind", "name", "unit_id", "station_id"].forEach(function (k) { if (c[k] !== undefined) merged[k] = c[k]; });
    merged.last_seq = Math.max((old && old.last_seq) || 0, c.last_seq || 0);
    if (!old) {
      state.channels[id] = merged;
      state.order.push(id);
      if (state.readSeq[id] === undefined) {
        // Unread from the server when it tells; otherwise a first sight starts with nothing unread.
        state.readSeq[id] = typeof c.unread === "number" ? Math.max(0, merged.last_seq - c.unread) : merged.last_seq;
      }
    }
    return merged;
  }
  // Units see their conversations first; officers their station's lists first.
  var KIND_RANK = IS_UNIT ? { direct: 0, group: 1, station: 2, category: 3, service_point: 4 }
                          : { station: 0, category: 1, service_point: 2, group: 3, direct: 4 };
  function chatChannels() {
    return state.order.filter(function (id) { return state.channels[id].kind !== "assistance"; })
      .map(function (id, i) { return [id, i]; })
      .sort(function (a, b) {
        // Conversations with something unread first, then by kind, then in the server's order.
        var ua = unreadOf(a[0]) > 0 ? 0 : 1, ub = unreadOf(b[0]) > 0 ? 0 : 1;
        var ra = KIND_RANK[state.channels[a[0]].kind], rb = KIND_RANK[state.channels[b[0]].kind];
        return ua - ub || (ra === undefined ? 9 : ra) - (rb === undefined ? 9 : rb) || a[1] - b[1];
      })
      .map(function (p) { return p[0]; });
  }
  // A direct conversation is named "unit ↔ officer": each side sees the other's name in the list.
  function shortName(c) {
    var name = c.name || "#" + c.id;
    var parts = c.kind === "direct" ? name.split(" ↔ ") : [];
    return parts.length === 2 ? (IS_UNIT ? parts[1] : parts[0]) : name;
  }
  function canPost(c) {
    return !!(CFG.can_post_registry || (c && (c.kind === "group" || c.kind === "direct" || c.kind === "assistance")));
  }

  function unreadOf(id) {
    var c = state.channels[String(id)];
    return c ? Math.max(0, (c.last_seq || 0) - (state.readSeq[String(id)] || 0)) : 0;
  }
  function markRead(id) {
    var c = state.channels[String(id)];
    if (!c) return;
    state.readSeq[String(id)] = c.last_seq || 0;
    storageSet(localStorage, READ_KEY, state.readSeq);
  }

  function renderChannels() {
    var list = $("#mx-channel-list");
    if (!list) return;
    var scroller = $(".mx-channels"), keep = scroller ? scroller.scrollTop : 0, keepList = list.scrollTop;
    clear(list);
    var total = 0;
    var shown = chatChannels();
    if (!shown.length) list.appendChild(el("li", { class: "muted", text: S.no_channels }));
    shown.forEach(function (id) {
      var c = state.channels[id];
      var unread = unreadOf(id);
      total += unread;
      list.appendChild(el("li", null, [
        el("button", {
          type: "button", class: "mx-channel" + (String(state.current) === id ? " active" : ""),
          "data-channel": id, "aria-current": String(state.current) === id ? "true" : null,
          onclick: function () { openChannel(id); }
        }, [
          el("span", { class: "mx-kind mx-kind-" + (c.kind || "x"), text: KIND_LABELS[c.kind] || c.kind || "" }),
          el("span", { class: "mx-channel-name", title: c.name || "", text: shortName(c) }),
          unread ? el("span", { class: "mx-unread", text: unread > 99 ? "99+" : unread }) : null
        ])
      ]));
    });
    if (scroller) scroller.scrollTop = keep;  // re-rendering must not jump the list back to the top
    list.scrollTop = keepList;
    setCount("unread", total);
    fillAudience();
    updateTitle();
  }
  var baseTitle = document.title;
  function updateTitle() {
    var n = 0;
    $all(".mx-tab .mx-count").forEach(function (c) { n += Number(c.textContent) || 0; });
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  function setCount(name, n) {
    $all('[data-count="' + name + '"]').forEach(function (node) { node.textContent = n ? String(n) : ""; });
    if (name !== "unread") updateTitle();
  }

  function loadChannels() {
    return api("GET", API + "/channels?limit=500").then(function (data) {
      items(data).forEach(mergeChannel);
      renderChannels();
      var wanted = sessionStorage.getItem("eqian.mx.current." + CFG.user_id);
      if (!state.current && $("#mx-messages")) {
        var chat = chatChannels();
        var first = (wanted && state.channels[wanted] && chat.indexOf(wanted) >= 0) ? wanted : chat[0];
        if (first) openChannel(first);
      }
    }).catch(fail);
  }

  function openChannel(id) {
    id = String(id);
    state.current = id;
    state.replyTo = null;
    sessionStorage.setItem("eqian.mx.current." + CFG.user_id, id);
    var c = state.channels[id];
    $("#mx-conv-title").textContent = c ? c.name : "#" + id;
    var postable = canPost(c);
    $("#mx-compose").hidden = !postable;
    var note = $("#mx-broadcast-note");
    note.hidden = postable;
    note.textContent = postable ? "" : S.broadcast_only;
    renderReplyTo();
    var last = (c && c.last_seq) || 0;
    var from = Math.max(0, last - HISTORY_PAGE);
    if (state.loaded[id] === undefined || state.loaded[id] > from + 1) {
      fetchHistory(id, from, last - from).then(function () { renderMessages(true); });
    }
    renderMessages(true);
    markRead(id);
    renderChannels();
    revealActiveChannel();
  }

  // Keep the open conversation visible in the (scrolling) channel list.
  function revealActiveChannel() {
    var box = $(".mx-channels"), active = $(".mx-channel.active");
    if (!box || !active) return;
    var b = box.getBoundingClientRect(), a = active.getBoundingClientRect();
    if (a.top < b.top || a.bottom > b.bottom) box.scrollTop += a.top - b.top - b.height / 2;
  }

  function fetchHistory(id, afterSeq, limit) {
    if (limit <= 0) { state.loaded[id] = Math.min(state.loaded[id] || Infinity, afterSeq + 1); return Promise.resolve(); }
    return api("GET", API + "/channels/" + id + "/messages?after_seq=" + afterSeq + "&limit=" + Math.min(limit, 200))
      .then(function (data) {
        items(data).forEach(function (m) { m.channel_id = m.channel_id || Number(id); onMessage(m, false); });
        state.loaded[id] = Math.min(state.loaded[id] || Infinity, afterSeq + 1);
      }).catch(fail);
  }

  function onMessage(m, live) {
    var id = String(m.channel_id);
    // The socket delivers each channel in seq order without gaps, so its frames move the cursor,
    // even one already shown (from the HTTP answer to our own send).
    if (live) advanceCursor(id, m.seq);
    if (seen(id, m.seq)) return;  // nothing twice: (channel_id, seq) identifies a message
    (state.messages[id] = state.messages[id] || {})[m.seq] = m;
    if (m.id !== undefined) state.byId[m.id] = m;
    var c = state.channels[id];
    if (!c) {
      c = mergeChannel({ id: m.channel_id, last_seq: m.seq, name: "#" + id });
      state.readSeq[id] = m.seq - 1;
      loadChannels();
    }
    if (m.seq > (c.last_seq || 0)) c.last_seq = m.seq;
    if (isMine(m) && m.seq > (state.readSeq[id] || 0)) {
      state.readSeq[id] = m.seq;
      storageSet(localStorage, READ_KEY, state.readSeq);
    }
    if (m.kind === "instruction" && m.instruction) onInstructionMessage(m, live);
    if (m.assistance) {
      state.assistByChannel[id] = m.assistance.id;
      onAssistanceEvent(m.assistance.id, m, live);
    } else if (state.assistByChannel[id] !== undefined || (c && c.kind === "assistance")) {
      onAssistanceEvent(state.assistByChannel[id], m, live);
    }
    if (id === String(state.current) && document.visibilityState !== "hidden" && state.pane === "chat") {
      appendMessage(m);
      markRead(id);
    }
    if (live) renderChannels();
  }

  function senderName(m) { return (m.sender && (m.sender.name || m.sender.display_name)) || ""; }
  function isMine(m) { return m.sender && String(m.sender.id) === String(CFG.user_id); }

  function messageNode(m) {
    var box = el("article", {
      class: "mx-msg" + (isMine(m) ? " mx-mine" : "") + (m.kind === "instruction" ? " mx-msg-instruction" : ""),
      "data-seq": m.seq, "data-id": m.id
    });
    box.appendChild(el("div", { class: "mx-meta" }, [
      el("b", { text: isMine(m) ? S.you : senderName(m) }), " ",
      el("time", { datetime: m.created_at, text: fmtTime(m.created_at) })
    ]));
    if (m.reply_to) {
      var q = state.byId[m.reply_to];
      box.appendChild(el("blockquote", { class: "mx-quote", text: q ? senderName(q) + COLON + (q.body || "").slice(0, 80) : S.reply + " #" + m.reply_to }));
    }
    if (m.instruction) {
      var ins = state.instructions[m.instruction.id] || normInstruction(m);
      var card = el("div", { class: "mx-ins-card" }, [
        el("span", { class: "tag mx-tag-ins", text: S.instruction }), " ",
        el("b", { text: m.instruction.title || "" }), " ",
        el("span", { class: "hint" + (isPast(m.instruction.deadline) ? " mx-late" : ""), text: S.deadline + " " + fmtTime(m.instruction.deadline) })
      ]);
      if (!IS_UNIT && ins.total) {
        card.appendChild(el("button", {
          type: "button", class: "link mx-ins-progress", "data-instruction": ins.id,
          onclick: function () { showPane("board"); openInstruction(ins.id); },
          text: S.acknowledged + " " + (ins.acknowledged || 0) + "/" + ins.total
        }));
      }
      box.appendChild(card);
    }
    if (m.body) box.appendChild(el("div", { class: "mx-text", text: m.body }));
    (m.attachments || []).forEach(function (a) {
      var href = API + "/attachments/" + a.id;
      var isImage = /^image\//.test(a.content_type || "");
      box.appendChild(el("a", { class: "mx-attachment", href: href, target: "_blank", rel: "noopener" }, [
        isImage ? el("img", { src: href, alt: a.name || S.attachment, loading: "lazy" }) : null,
        el("span", { text: S.attachment + COLON + (a.name || "") + (a.size ? " (" + Math.ceil(a.size / 1024) + " KB)" : "") })
      ]));
    });
    box.appendChild(el("button", {
      type: "button", class: "link mx-reply-btn", text: S.reply,
      onclick: function () { state.replyTo = m; renderReplyTo(); $("#mx-body").focus(); }
    }));
    return box;
  }

  function renderMessages(scroll) {
    var box = $("#mx-messages");
    if (!box) return;
    clear(box);
    var id = String(state.current);
    var msgs = state.messages[id] || {};
    var seqs = Object.keys(msgs).map(Number).sort(function (a, b) { return a - b; });
    if ((state.loaded[id] || 1) > 1) {
      box.appendChild(el("button", {
        type: "button", class: "link mx-more", text: S.load_more,
        onclick: function () {
          var low = state.loaded[id];
          var from = Math.max(0, low - 1 - HISTORY_PAGE);
          fetchHistory(id, from, low - 1 - from).then(function () { renderMessages(false); });
        }
      }));
    }
    if (!seqs.length) box.appendChild(el("p", { class: "muted mx-empty", text: S.no_messages }));
    seqs.forEach(function (s) { box.appendChild(messageNode(msgs[s])); });
    if (scroll) box.scrollTop = box.scrollHeight;
  }

  function appendMessage(m) {
    var box = $("#mx-messages");
    if (!box) return;
    var empty = $(".mx-empty", box);
    if (empty) empty.parentNode.removeChild(empty);
    var after = $all(".mx-msg", box).filter(function (n) { return Number(n.getAttribute("data-seq")) > m.seq; })[0];
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    box.insertBefore(messageNode(m), after || null);
    if (nearBottom || isMine(m)) box.scrollTop = box.scrollHeight;
  }

  function renderReplyTo() {
    var box = $("#mx-reply-to");
    if (!box) return;
    clear(box);
    box.hidden = !state.replyTo;
    if (state.replyTo) {
      box.appendChild(el("span", { text: S.replying_to + senderName(state.replyTo) + COLON + (state.replyTo.body || "").slice(0, 60) }));
      box.appendChild(el("button", { type: "button", class: "link", text: S.cancel, onclick: function () { state.replyTo = null; renderReplyTo(); } }));
    }
  }

  function uploadAttachment(file) {
    var form = new FormData();
    form.append("file", file, file.name);
    return api("POST", API + "/attachments", form, true);
  }

  function bindCompose() {
    var form = $("#mx-compose");
    if (!form) return;
    var body = $("#mx-body"), file = $("#mx-file"), status = $("#mx-compose-status");
    body.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = body.value.trim();
      var chosen = file.files && file.files[0];
      if (!state.current || (!text && !chosen)) return;
      var button = $("button[type=submit]", form);
      button.disabled = true;
      status.textContent = "…";
      (chosen ? uploadAttachment(chosen) : Promise.resolve(null)).then(function (att) {
        return api("POST", API + "/channels/" + state.current + "/messages", {
          body: text, reply_to: state.replyTo ? state.replyTo.id : null, mentions: [],
          attachment_ids: att ? [att.id] : []
        });
      }).then(function (m) {
        body.value = ""; file.value = ""; status.textContent = "";
        state.replyTo = null; renderReplyTo();
        if (m && m.seq !== undefined) { m.channel_id = m.channel_id || Number(state.current); onMessage(m, false); }
      }).catch(function (err) {
        status.textContent = "";
        toast(S.send_failed + err.message, "error");
      }).then(function () { button.disabled = false; });
    });
  }

  function openDirect(body) {
    return api("POST", API + "/channels/direct", body).then(function (c) {
      mergeChannel(c);
      if (state.cursors[String(c.id)] === undefined) advanceCursor(c.id, c.last_seq || 0);
      renderChannels();
      showPane("chat");
      openChannel(c.id);
      var input = $("#mx-body");
      if (input) input.focus();
    }).catch(fail);
  }

  function bindDirect() {
    var form = $("#mx-direct-form");
    if (!form) return;
    if (IS_UNIT) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (form.elements.officer_id.value) openDirect({ officer_id: Number(form.elements.officer_id.value) });
      });
      return;
    }
    var results = $("#mx-direct-results");
    var search = debounce(function () {
      var q = form.elements.q.value.trim();
      clear(results);
      if (!q) return;
      searchUnits(q).then(function (found) {
        clear(results);
        if (!found.length) results.appendChild(el("li", { class: "muted", text: S.search_none }));
        found.forEach(function (u) {
          results.appendChild(el("li", null, [el("button", {
            type: "button", class: "link", title: S.open_direct, text: u.name,
            onclick: function () { form.elements.q.value = ""; clear(results); openDirect({ unit_id: u.id }); }
          })]));
        });
      }).catch(fail);
    }, 300);
    form.addEventListener("input", function () { search("q"); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); search("q"); });
  }

  function searchUnits(q) { return api("GET", "/api/v1/units?limit=8&q=" + encodeURIComponent(q)).then(items); }

  function bindGroup() {
    var form = $("#mx-group-form");
    if (!form) return;
    var results = $("#mx-group-results"), chosenBox = $("#mx-group-chosen"), chosen = {};
    function renderChosen() {
      clear(chosenBox);
      Object.keys(chosen).forEach(function (id) {
        chosenBox.appendChild(el("li", null, [el("button", {
          type: "button", class: "mx-chip", "data-unit": id, text: chosen[id] + " ×",
          onclick: function () { delete chosen[id]; renderChosen(); }
        })]));
      });
    }
    var search = debounce(function () {
      var q = form.elements.q.value.trim();
      clear(results);
      if (!q) return;
      searchUnits(q).then(function (found) {
        clear(results);
        if (!found.length) results.appendChild(el("li", { class: "muted", text: S.search_none }));
        found.forEach(function (u) {
          results.appendChild(el("li", null, [el("button", {
            type: "button", class: "link", text: "+ " + u.name,
            onclick: function () { chosen[u.id] = u.name; renderChosen(); }
          })]));
        });
      }).catch(fail);
    }, 300);
    form.elements.q.addEventListener("input", function () { search("q"); });
    form.elements.q.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); search("q"); } });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var ids = Object.keys(chosen).map(Number);
      api("POST", API + "/channels", { name: form.elements.name.value.trim(), unit_ids: ids, user_ids: [] }).then(function (c) {
        mergeChannel(c);
        if (state.cursors[String(c.id)] === undefined) advanceCursor(c.id, c.last_seq || 0);
        chosen = {}; renderChosen(); clear(results); form.reset();
        form.parentNode.open = false;
        renderChannels();
        openChannel(c.id);
      }).catch(fail);
    });
  }

  // ---- instructions ----------------------------------------------------------------------------

  function normInstruction(src) {
    var ins = src.instruction || {};
    var id = ins.id || src.instruction_id || src.id;
    var out = state.instructions[id] || { id: id };
    out.title = ins.title || src.title || out.title || "";
    out.deadline = ins.deadline || src.deadline || out.deadline;
    if (src.kind === "instruction" || src.body !== undefined) out.body = src.body !== undefined ? src.body : out.body;
    out.channel_id = src.channel_id || out.channel_id;
    out.created_at = src.created_at || out.created_at;
    out.sender = src.sender || out.sender;
    ["total", "delivered", "read", "acknowledged", "overdue"].forEach(function (k) {
      if (typeof src[k] === "number") out[k] = src[k];
      else if (src.progress && typeof src.progress[k] === "number") out[k] = src.progress[k];
    });
    if (src.status) out.status = src.status;
    if (src.acknowledged_at) { out.acknowledged_at = src.acknowledged_at; out.acked = true; }
    if (src.acknowledged === true) out.acked = true;
    state.instructions[id] = out;
    return out;
  }

  function onInstructionMessage(m, live) {
    var ins = normInstruction(m);
    if (IS_UNIT) {
      if (!state.inbox[ins.id] && !ins.acked) {
        state.inbox[ins.id] = ins;
        renderInbox();
        if (live) toast(S.new_instruction + COLON + ins.title);
      }
    } else {
      renderInstructionList();
      if (live && isMine(m)) refreshInstruction(ins.id);
    }
  }

  function onProgress(f) {
    var ins = normInstruction({ instruction_id: f.instruction_id, total: f.total, delivered: f.delivered, read: f.read, acknowledged: f.acknowledged, overdue: f.overdue });
    renderInstructionList();
    if (String(state.boardCurrent) === String(ins.id)) { renderBoardHead(ins); refreshReceipts(ins.id); }
    $all('.mx-ins-progress[data-instruction="' + ins.id + '"]').forEach(function (b) {
      b.textContent = S.acknowledged + " " + (ins.acknowledged || 0) + "/" + (ins.total || 0);
    });
  }

  function loadInstructions() {
    return api("GET", API + "/instructions?limit=100").then(function (data) {
      items(data).forEach(normInstruction);
      renderInstructionList();
    }).catch(function (err) {
      if (err.status === 404 || err.status === 405) return gatherInstructions();
      fail(err);
    });
  }

  // Without a list endpoint: the instructions among each channel's recent messages.
  function gatherInstructions() {
    var ids = state.order.slice(0, 40);
    return Promise.all(ids.map(function (id) {
      var last = state.channels[id].last_seq || 0;
      if (!last) return null;
      return fetchHistory(id, Math.max(0, last - 100), 100);
    })).then(function () {
      Object.keys(state.instructions).forEach(function (id) { if (state.instructions[id].total === undefined) refreshInstruction(id); });
      renderInstructionList();
    });
  }

  function refreshInstruction(id) {
    return api("GET", API + "/instructions/" + id).then(function (data) {
      var ins = normInstruction(data);
      renderInstructionList();
      if (String(state.boardCurrent) === String(id)) renderBoardHead(ins);
      return ins;
    }).catch(fail);
  }

  function instructionSort(a, b) { return String(b.created_at || "").localeCompare(String(a.created_at || "")) || b.id - a.id; }

  function renderInstructionList() {
    var list = $("#mx-instruction-list");
    if (!list) return;
    clear(list);
    var all = Object.keys(state.instructions).map(function (k) { return state.instructions[k]; }).sort(instructionSort);
    if (!all.length) list.appendChild(el("li", { class: "muted", text: S.board_empty }));
    all.forEach(function (ins) {
      var total = ins.total || 0, acked = ins.acknowledged || 0;
      list.appendChild(el("li", null, [el("button", {
        type: "button", class: "mx-item" + (String(state.boardCurrent) === String(ins.id) ? " active" : ""),
        "data-instruction": ins.id, onclick: function () { openInstruction(ins.id); }
      }, [
        el("span", { class: "mx-item-title", text: ins.title }),
        el("span", { class: "mx-item-meta" }, [
          el("span", { class: "mx-ratio", text: S.acknowledged + " " + acked + "/" + total }),
          ins.overdue ? el("span", { class: "mx-badge-late", text: S.overdue + " " + ins.overdue }) : null,
          el("span", { class: "hint", text: S.deadline + " " + fmtTime(ins.deadline) })
        ])
      ])]));
    });
  }

  function openInstruction(id) {
    state.boardCurrent = String(id);
    renderInstructionList();
    var box = $("#mx-board-detail");
    clear(box);
    box.appendChild(el("div", { id: "mx-board-head" }));
    box.appendChild(el("div", { id: "mx-board-receipts" }));
    var ins = state.instructions[id];
    if (ins) renderBoardHead(ins);
    revealOnPhone(box);
    refreshInstruction(id);
    refreshReceipts.now(id);
  }

  // On a narrow screen the detail sits below the list: bring it into view when chosen.
  function revealOnPhone(node) {
    if (node && window.innerWidth <= 800 && node.scrollIntoView) node.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  function bar(parts, total) {
    var wrap = el("div", { class: "mx-bar", role: "img", "aria-label": parts.map(function (p) { return p.label + " " + p.value; }).join("，") });
    var used = 0;
    parts.forEach(function (p) {
      var seg = el("span", { class: "mx-bar-seg " + p.cls, title: p.label + " " + p.value });
      var w = total ? Math.max(0, Math.min(100 - used, (100 * p.value) / total)) : 0;
      seg.style.width = w + "%";  // CSSOM, allowed by the style-src CSP (inline style attributes are not)
      used += w;
      wrap.appendChild(seg);
    });
    return wrap;
  }

  function renderBoardHead(ins) {
    var head = $("#mx-board-head");
    if (!head) return;
    clear(head);
    var total = ins.total || 0, acked = ins.acknowledged || 0, read = ins.read || 0, delivered = ins.delivered || 0;
    head.appendChild(el("h2", { text: ins.title }));
    if (ins.body) head.appendChild(el("p", { class: "mx-ins-body", text: ins.body }));
    head.appendChild(el("p", { class: "hint" + (isPast(ins.deadline) ? " mx-late" : "") }, [
      S.deadline + " " + fmtTime(ins.deadline) + (ins.created_at ? " · " + fmtTime(ins.created_at) : "")
    ]));
    head.appendChild(el("p", { class: "mx-big", id: "mx-ack-ratio", "data-acked": acked, "data-total": total }, [
      el("span", { text: S.acknowledged + " " }), el("strong", { text: acked + "/" + total }),
      total ? el("small", { class: "muted", text: " " + Math.round((100 * acked) / total) + "%" }) : null
    ]));
    // Segments are exclusive: acknowledged ⊂ read ⊂ delivered.
    head.appendChild(bar([
      { cls: "mx-seg-ack", value: acked, label: S.acknowledged },
      { cls: "mx-seg-read", value: Math.max(0, read - acked), label: S.read },
      { cls: "mx-seg-del", value: Math.max(0, delivered - Math.max(read, acked)), label: S.delivered }
    ], total));
    head.appendChild(el("ul", { class: "mx-legend" }, [
      el("li", { class: "mx-l-ack", text: S.acknowledged + " " + acked }),
      el("li", { class: "mx-l-read", text: S.read + " " + read }),
      el("li", { class: "mx-l-del", text: S.delivered + " " + delivered }),
      el("li", { class: "mx-l-late", text: S.overdue + " " + (ins.overdue || 0) })
    ]));
  }

  function receiptUnit(r) { return r.unit_name || (r.unit && r.unit.name) || "#" + (r.unit_id || r.id); }

  var refreshReceipts = debounce(function (id) { loadReceipts(id); }, 1200);
  refreshReceipts.now = function (id) { loadReceipts(id); };

  var RECEIPT_PAGE = 500;
  function loadReceipts(id) {
    var base = API + "/instructions/" + id + "/receipts?limit=" + RECEIPT_PAGE + "&status=";
    return Promise.all([api("GET", base + "pending"), api("GET", base + "acknowledged")]).then(function (res) {
      if (String(state.boardCurrent) !== String(id)) return;
      var pending = items(res[0]), pendingTotal = res[0].total || pending.length;
      var acked = items(res[1]), ackedTotal = res[1].total || acked.length;
      var ins = state.instructions[id] || {};
      var box = $("#mx-board-receipts");
      clear(box);
      var late = isPast(ins.deadline);
      var left = el("div", { class: "mx-receipt-col" }), right = el("div", { class: "mx-receipt-col" });
      box.appendChild(el("div", { class: "mx-receipt-cols" }, [left, right]));
      left.appendChild(el("h3", { text: S.pending_units + " (" + pendingTotal + ")" }));
      if (!pendingTotal) left.appendChild(el("p", { class: "mx-all-acked", text: S.all_acked }));
      else {
        left.appendChild(el("div", { class: "mx-scroll" }, [el("table", { class: "list mx-receipts", id: "mx-pending" }, [
          el("thead", null, [el("tr", null, [el("th", { text: S.unit }), el("th", { text: S.status })])]),
          el("tbody", null, pending.map(function (r) {
            var overdue = r.status === "overdue" || r.status === "escalated" || late;
            var st = overdue ? S.overdue : r.read_at ? S.read : r.delivered_at ? S.delivered : S.not_acknowledged;
            return el("tr", { class: overdue ? "mx-row-late" : "", "data-unit": r.unit_id }, [
              el("td", { text: receiptUnit(r) }), el("td", { class: "nowrap", text: st })
            ]);
          }))
        ])]));
        if (pendingTotal > pending.length) left.appendChild(el("p", { class: "hint", text: "… +" + (pendingTotal - pending.length) }));
      }
      right.appendChild(el("h3", { text: S.acknowledged + " (" + ackedTotal + ")" }));
      if (ackedTotal) {
        acked.sort(function (a, b) { return String(b.acknowledged_at || "").localeCompare(String(a.acknowledged_at || "")); });
        right.appendChild(el("div", { class: "mx-scroll" }, [el("table", { class: "list mx-receipts", id: "mx-acked" }, [
          el("thead", null, [el("tr", null, [el("th", { text: S.unit }), el("th", { text: S.time }), el("th", { text: S.reply_text })])]),
          el("tbody", null, acked.map(function (r) {
            return el("tr", { "data-unit": r.unit_id }, [
              el("td", { text: receiptUnit(r) }), el("td", { class: "nowrap", text: fmtTime(r.acknowledged_at) }),
              el("td", { text: r.ack_text || "" })
            ]);
          }))
        ])]));
        if (ackedTotal > acked.length) right.appendChild(el("p", { class: "hint", text: "… +" + (ackedTotal - acked.length) }));
      }
    }).catch(fail);
  }

  function fillAudience() {
    var select = $("#mx-audience");
    if (!select) return;
    var keep = select.value;
    $all("option[data-channel]", select).forEach(function (o) { select.removeChild(o); });
    chatChannels().forEach(function (id) {
      var c = state.channels[id];
      if (c.kind === "direct") return;
      select.appendChild(el("option", { value: id, "data-channel": id, text: (KIND_LABELS[c.kind] ? KIND_LABELS[c.kind] + " · " : "") + (c.name || "#" + id) }));
    });
    if (keep) select.value = keep;
  }

  function shanghaiIso(local) {  // "2026-11-24T18:00" typed in Beijing time → ISO with offset
    return local ? (local.length === 16 ? local + ":00" : local) + "+08:00" : null;
  }

  function bindInstructionForm() {
    var form = $("#mx-instruction-form");
    if (!form) return;
    var deadline = form.elements.deadline;
    if (!deadline.value) {
      var t = new Date(Date.now() + 8 * 3600e3 + 24 * 3600e3);  // tomorrow, Beijing wall clock
      deadline.value = t.toISOString().slice(0, 11) + "18:00";
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var status = $("[data-status]", form), button = $("button[type=submit]", form);
      button.disabled = true;
      api("POST", API + "/instructions", {
        channel_id: Number(form.elements.channel_id.value), title: form.elements.title.value.trim(),
        body: form.elements.body.value.trim(), deadline: shanghaiIso(form.elements.deadline.value)
      }).then(function (data) {
        var ins = normInstruction(data || {});
        if (!ins.channel_id) ins.channel_id = Number(form.elements.channel_id.value);
        form.elements.title.value = ""; form.elements.body.value = "";
        status.textContent = S.sent;
        setTimeout(function () { status.textContent = ""; }, 3000);
        renderInstructionList();
        if (ins.id) openInstruction(ins.id);
      }).catch(fail).then(function () { button.disabled = false; });
    });
  }

  function loadEscalations() {
    var list = $("#mx-escalations");
    if (!list) return Promise.resolve();
    return api("GET", API + "/escalations?limit=100").then(function (data) {
      clear(list);
      var rows = items(data);
      setCount("escalated", data.total || rows.length);
      if (!rows.length) list.appendChild(el("li", { class: "muted", text: S.escalations_empty }));
      rows.forEach(function (r) {
        list.appendChild(el("li", null, [el("button", {
          type: "button", class: "mx-item mx-esc", "data-instruction": r.instruction_id,
          onclick: function () { openInstruction(r.instruction_id); }
        }, [
          el("span", { class: "mx-item-title", text: r.unit_name }),
          el("span", { class: "mx-item-meta" }, [
            el("span", { text: r.title }),
            el("span", { class: "mx-late", text: S.deadline + " " + fmtTime(r.deadline) })
          ])
        ])]));
      });
    }).catch(fail);
  }

  // ---- unit inbox ------------------------------------------------------------------------------

  var readSent = {};
  function loadInbox() {
    // Pending ones first (the server sorts them so), then the 20 latest acknowledged for reference.
    return api("GET", API + "/inbox?limit=200").then(function (data) {
      var done = 0;
      items(data).forEach(function (it) {
        var ins = normInstruction(it);
        if (!ins.acked || done++ < 20) state.inbox[ins.id] = ins;
      });
      renderInbox();
    }).catch(fail);
  }

  function renderInbox() {
    var list = $("#mx-inbox");
    if (!list) return;
    clear(list);
    var all = Object.keys(state.inbox).map(function (k) { return state.inbox[k]; }).sort(function (a, b) {
      return (a.acked ? 1 : 0) - (b.acked ? 1 : 0) || String(a.deadline || "").localeCompare(String(b.deadline || ""));
    });
    var pending = all.filter(function (i) { return !i.acked; });
    setCount("inbox", pending.length);
    if (!all.length) list.appendChild(el("li", { class: "muted mx-inbox-empty", text: S.inbox_empty }));
    all.forEach(function (ins) {
      var late = !ins.acked && isPast(ins.deadline);
      var item = el("li", { class: "mx-inbox-item card" + (ins.acked ? " mx-done" : "") + (late ? " mx-overdue" : ""), "data-instruction": ins.id }, [
        el("div", { class: "mx-inbox-head" }, [
          el("span", { class: "tag mx-tag-ins", text: S.instruction }),
          el("b", { class: "mx-inbox-title", text: ins.title }),
          el("span", { class: "hint" + (late ? " mx-late" : ""), text: S.deadline + " " + fmtTime(ins.deadline) + (late ? " · " + S.overdue : "") })
        ]),
        ins.body ? el("p", { class: "mx-inbox-body", text: ins.body }) : null,
        ins.sender ? el("p", { class: "hint", text: senderName({ sender: ins.sender }) + " · " + fmtTime(ins.created_at) }) : null
      ]);
      if (ins.acked) {
        var when = ins.acknowledged_at ? S.acknowledged + " · " + fmtTime(ins.acknowledged_at) : S.ack_done;
        item.appendChild(el("p", { class: "mx-ack-done", text: "✓ " + when + (ins.ack_text ? COLON + ins.ack_text : "") }));
      }
      else {
        var text = el("input", { type: "text", class: "mx-ack-text", maxlength: 500, placeholder: S.ack_text_placeholder, "aria-label": S.reply_text });
        var button = el("button", { type: "button", class: "primary mx-ack", text: S.ack });
        button.addEventListener("click", function () {
          button.disabled = true;
          api("POST", API + "/instructions/" + ins.id + "/ack", { text: text.value.trim() })
            .then(function () { markAcked(ins.id, text.value.trim()); })
            .catch(function (err) {
              if (err.status === 409) markAcked(ins.id, null);  // already acknowledged by a colleague
              else { button.disabled = false; fail(err); }
            });
        });
        item.appendChild(el("div", { class: "mx-ack-row" }, [text, button]));
      }
      list.appendChild(item);
    });
    if (state.pane === "inbox") sendReads();
  }

  function sendReads() {
    Object.keys(state.inbox).forEach(function (id) {
      if (state.inbox[id].acked || readSent[id]) return;
      readSent[id] = true;
      api("POST", API + "/instructions/" + id + "/read", {}).catch(function () { readSent[id] = false; });
    });
  }

  function markAcked(id, text) {
    var ins = state.inbox[id] || state.instructions[id];
    if (!ins) return;
    ins.acked = true;
    if (text) ins.ack_text = text;
    if (IS_UNIT) { state.inbox[id] = ins; renderInbox(); }
  }

  // ---- assistance (协查) -----------------------------------------------------------------------

  var R = 6371008.8, DEG = Math.PI / 180;
  var SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  // An equirectangular projection around the point (metres; accurate to well under 1 % at 20 km).
  function drawMap(container, center, radius, units, opts) {
    opts = opts || {};
    clear(container);
    var reach = radius * 2;
    var cos0 = Math.cos(center.lat * DEG);
    function project(lat, lng) { return [(lng - center.lng) * DEG * R * cos0, -(lat - center.lat) * DEG * R]; }
    var dot = reach / 90;
    var map = svg("svg", {
      viewBox: [-reach, -reach, 2 * reach, 2 * reach].join(" "), class: "mx-map-svg", role: "img",
      "aria-label": S.assist_units + " " + units.filter(function (u) { return u.inside; }).length + " · " + S.radius + " " + radius + " " + S.meters
    });
    map.appendChild(svg("rect", { x: -reach, y: -reach, width: 2 * reach, height: 2 * reach, class: "mx-map-bg" }));
    [0.5, 1.5].forEach(function (k) { map.appendChild(svg("circle", { cx: 0, cy: 0, r: radius * k, class: "mx-map-ring" })); });
    map.appendChild(svg("circle", { cx: 0, cy: 0, r: radius, class: "mx-map-radius" }));
    var cats = opts.categories && opts.categories.length ? opts.categories : null;
    var replied = opts.replied || {};
    var c = dot * 2.2;
    map.appendChild(svg("path", { d: "M" + -c + " 0H" + c + "M0 " + -c + "V" + c, class: "mx-map-center" }));
    // Units that replied are drawn last, larger, so nothing hides them.
    units.slice().sort(function (a, b) { return (replied[a.id] ? 1 : 0) - (replied[b.id] ? 1 : 0); }).forEach(function (u) {
      var p = project(u.lat, u.lng);
      var target = opts.targets ? !!opts.targets[u.id] : u.inside && (!cats || cats.indexOf(u.category) >= 0);
      var cls = "mx-unit" + (target ? " mx-unit-in" : "") + (replied[u.id] ? " mx-unit-replied" : "");
      map.appendChild(svg("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: dot * (replied[u.id] ? 2 : target ? 1.3 : 1), class: cls, "data-unit": u.id }, [
        svg("title", {}, [u.name + " · " + u.category_name + " · " + u.distance_m + " " + S.meters])
      ]));
    });
    // Scale bar: the radius, bottom left.
    var y = reach * 0.9, x0 = -reach * 0.92;
    map.appendChild(svg("path", { d: "M" + x0 + " " + y + "h" + radius, class: "mx-map-scale" }));
    map.appendChild(svg("text", { x: x0, y: y - reach * 0.03, class: "mx-map-label", "font-size": reach * 0.08 }, [radius + " " + S.meters]));
    if (opts.onPick) {
      map.addEventListener("click", function (ev) {
        var pt = map.createSVGPoint();
        pt.x = ev.clientX; pt.y = ev.clientY;
        var local = pt.matrixTransform(map.getScreenCTM().inverse());
        opts.onPick(center.lat - local.y / (DEG * R), center.lng + local.x / (DEG * R * cos0));
      });
    }
    container.appendChild(map);
    var inside = opts.targets ? Object.keys(opts.targets).length : units.filter(function (u) { return u.inside && (!cats || cats.indexOf(u.category) >= 0); }).length;
    container.appendChild(el("p", { class: "hint mx-map-count", text: S.assist_units + COLON + inside + " · " + S.radius + " " + radius + " " + S.meters }));
  }

  function unitsNear(lat, lng, radius) {
    return api("GET", "/messaging/units-near?lat=" + encodeURIComponent(lat) + "&lng=" + encodeURIComponent(lng) + "&radius_m=" + encodeURIComponent(radius));
  }

  function bindAssistForm() {
    var form = $("#mx-assist-form");
    if (!form) return;
    var preview = $("#mx-assist-preview");
    function categories() { return $all("input[name=unit_categories]:checked", form).map(function (i) { return i.value; }); }
    var redraw = debounce(function () {
      var lat = parseFloat(form.elements.lat.value), lng = parseFloat(form.elements.lng.value), radius = parseFloat(form.elements.radius_m.value);
      if (!(isFinite(lat) && isFinite(lng) && radius > 0)) { clear(preview); return; }
      unitsNear(lat, lng, radius).then(function (data) {
        drawMap(preview, { lat: lat, lng: lng }, radius, items(data), {
          categories: categories(),
          onPick: function (plat, plng) {
            form.elements.lat.value = plat.toFixed(6); form.elements.lng.value = plng.toFixed(6);
            redraw("map");
          }
        });
      }).catch(function () { clear(preview); });
    }, 300);
    form.addEventListener("input", function () { redraw("map"); });
    redraw("map");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var status = $("[data-status]", form), button = $("button[type=submit]", form);
      var photo = form.elements.photo.files && form.elements.photo.files[0];
      button.disabled = true;
      (photo ? uploadAttachment(photo) : Promise.resolve(null)).then(function (att) {
        return api("POST", API + "/assistance", {
          description: form.elements.description.value.trim(),
          lat: parseFloat(form.elements.lat.value), lng: parseFloat(form.elements.lng.value),
          radius_m: parseInt(form.elements.radius_m.value, 10), unit_categories: categories(),
          attachment_id: att ? att.id : null
        });
      }).then(function (data) {
        form.elements.description.value = ""; form.elements.photo.value = "";
        status.textContent = S.sent;
        setTimeout(function () { status.textContent = ""; }, 3000);
        if (data && data.id) { state.assists[data.id] = data; renderAssistList(); openAssist(data.id); }
        loadAssists();
      }).catch(fail).then(function () { button.disabled = false; });
    });
  }

  function loadAssists() {
    return api("GET", API + "/assistance?limit=100").then(function (data) {
      items(data).forEach(function (a) {
        state.assists[a.id] = Object.assign(state.assists[a.id] || {}, a);
        if (a.channel_id) state.assistByChannel[String(a.channel_id)] = a.id;
      });
      renderAssistList();
    }).catch(fail);
  }

  function assistOpen(a) { return !a.closed_at && a.status !== "closed"; }

  function renderAssistList() {
    var list = $("#mx-assist-list");
    if (!list) return;
    clear(list);
    var all = Object.keys(state.assists).map(function (k) { return state.assists[k]; })
      .sort(function (a, b) { return String(b.created_at || "").localeCompare(String(a.created_at || "")) || b.id - a.id; });
    setCount("assist", all.filter(assistOpen).length);
    if (!all.length) list.appendChild(el("li", { class: "muted", text: S.assist_empty }));
    all.forEach(function (a) {
      list.appendChild(el("li", null, [el("button", {
        type: "button", class: "mx-item" + (String(state.assistCurrent) === String(a.id) ? " active" : ""),
        "data-assist": a.id, onclick: function () { openAssist(a.id); }
      }, [
        el("span", { class: "mx-item-title", text: (a.description || "").slice(0, 40) }),
        el("span", { class: "mx-item-meta" }, [
          el("span", { class: assistOpen(a) ? "mx-open" : "muted", text: assistOpen(a) ? S.assist_open : S.assist_closed }),
          typeof a.reply_count === "number" ? el("span", { text: S.assist_replies + " " + a.reply_count }) : null,
          el("span", { class: "hint", text: fmtTime(a.created_at) })
        ])
      ])]));
    });
  }

  function openAssist(id, quiet) {
    state.assistCurrent = String(id);
    renderAssistList();
    if (!quiet) revealOnPhone($("#mx-assist-detail"));
    return api("GET", API + "/assistance/" + id).then(function (a) {
      state.assists[a.id] = Object.assign(state.assists[a.id] || {}, a);
      if (String(state.assistCurrent) === String(id)) renderAssistDetail(state.assists[a.id]);
    }).catch(fail);
  }

  function renderAssistDetail(a) {
    var box = $("#mx-assist-detail");
    clear(box);
    box.setAttribute("data-assist", a.id);
    box.appendChild(el("h2", { text: S.assist_title + " #" + a.id }));
    box.appendChild(el("p", { class: "mx-assist-desc", text: a.description || "" }));
    box.appendChild(el("p", { class: "hint" }, [
      fmtTime(a.created_at) + " · " + S.radius + " " + (a.radius_m || "") + " " + S.meters + " · ",
      el("span", { class: assistOpen(a) ? "mx-open" : "muted", text: assistOpen(a) ? S.assist_open : S.assist_closed + (a.outcome ? COLON + a.outcome : "") })
    ]));
    if (a.attachment_id || (a.attachment && a.attachment.id)) {
      var href = API + "/attachments/" + (a.attachment_id || a.attachment.id);
      box.appendChild(el("a", { href: href, target: "_blank", rel: "noopener", class: "mx-attachment" }, [el("img", { src: href, alt: S.attachment })]));
    }
    var notes = (a.replies || []).filter(function (r) { return r.kind === "system"; });
    var replies = (a.replies || []).filter(function (r) { return r.kind !== "system"; });
    var replied = {}, targets = null;
    replies.forEach(function (r) {
      var unitId = r.unit_id || (r.sender && r.sender.unit_id);
      if (unitId) replied[unitId] = true;
    });
    if (a.recipient_units) {
      targets = {};
      a.recipient_units.forEach(function (u) { targets[u.id] = true; });
    }
    if (!IS_UNIT && typeof a.lat === "number" && typeof a.lng === "number" && a.radius_m) {
      var mapBox = el("div", { class: "mx-map" });
      box.appendChild(mapBox);
      unitsNear(a.lat, a.lng, a.radius_m).then(function (data) {
        drawMap(mapBox, { lat: a.lat, lng: a.lng }, a.radius_m, items(data), { categories: a.unit_categories || [], replied: replied, targets: targets });
      }).catch(function () { /* the map is an aid; the replies below still stand */ });
    }
    box.appendChild(el("h3", { text: S.assist_replies + " (" + replies.length + ")" }));
    var list = el("ol", { class: "mx-replies", id: "mx-replies" });
    if (!replies.length) list.appendChild(el("li", { class: "muted", text: S.assist_no_replies }));
    replies.forEach(function (r) {
      list.appendChild(el("li", { "data-reply": r.id }, [
        el("div", { class: "mx-meta" }, [
          el("b", { text: r.unit_name || senderName(r) || "" }), " ",
          el("time", { text: fmtTime(r.created_at) })
        ]),
        el("div", { class: "mx-text", text: r.body || "" })
      ]));
    });
    box.appendChild(list);
    notes.forEach(function (n) {
      box.appendChild(el("p", { class: "hint mx-system" }, [fmtTime(n.created_at) + " · " + (n.body || "")]));
    });
    if (!assistOpen(a)) return;
    if (IS_UNIT) {
      var form = el("form", { class: "mx-form mx-assist-reply" }, [
        el("label", null, [S.assist_reply, el("textarea", { name: "body", rows: 2, required: true, maxlength: 2000 })]),
        el("div", { class: "mx-form-foot" }, [el("button", { type: "submit", class: "primary", text: S.assist_reply })])
      ]);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        api("POST", API + "/assistance/" + a.id + "/replies", { body: form.elements.body.value.trim() })
          .then(function () { toast(S.sent); openAssist(a.id, true); }).catch(fail);
      });
      box.appendChild(form);
    } else if (CFG.can_command) {
      var close = el("form", { class: "mx-form mx-assist-close" }, [
        el("label", null, [S.assist_outcome, el("input", { name: "outcome", required: true, maxlength: 500 })]),
        el("div", { class: "mx-form-foot" }, [el("button", { type: "submit", class: "primary", text: S.assist_close })])
      ]);
      close.addEventListener("submit", function (ev) {
        ev.preventDefault();
        api("POST", API + "/assistance/" + a.id + "/close", { outcome: close.elements.outcome.value.trim() })
          .then(function () { openAssist(a.id, true); loadAssists(); }).catch(fail);
      });
      box.appendChild(close);
    }
  }

  var refreshAssist = debounce(function (id) {
    loadAssists();
    if (id !== undefined && String(state.assistCurrent) === String(id)) openAssist(id, true);
  }, 500);

  function onAssistanceEvent(id, m, live) {
    if (id === undefined || id === null) { refreshAssist("list"); return; }
    if (live && m && !isMine(m)) {
      if (m.kind === "assistance") toast(S.new_assist + COLON + (m.body || "").slice(0, 40));
      else if (m.kind !== "system") toast(S.new_reply + COLON + (m.body || "").slice(0, 40));
    }
    if (live) refreshAssist(id);
  }

  // ---- panes -----------------------------------------------------------------------------------

  function showPane(name) {
    var tabs = $all(".mx-tab");
    if (!tabs.some(function (t) { return t.getAttribute("data-pane") === name; })) name = tabs[0].getAttribute("data-pane");
    state.pane = name;
    tabs.forEach(function (t) {
      var on = t.getAttribute("data-pane") === name;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.classList.toggle("active", on);
    });
    $all(".mx-pane").forEach(function (p) { p.hidden = p.id !== "mx-pane-" + name; });
    if (history.replaceState) history.replaceState(null, "", "#" + name);
    if (name === "chat" && state.current) { renderMessages(true); markRead(state.current); renderChannels(); }
    if (name === "inbox") sendReads();
    if (name === "board") loadEscalations();
  }

  function start() {
    $all(".mx-tab").forEach(function (t) { t.addEventListener("click", function () { showPane(t.getAttribute("data-pane")); }); });
    showPane((location.hash || "").slice(1) || $all(".mx-tab")[0].getAttribute("data-pane"));
    bindCompose();
    bindDirect();
    bindGroup();
    bindInstructionForm();
    bindAssistForm();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && state.pane === "chat" && state.current) { renderMessages(false); markRead(state.current); renderChannels(); }
    });
    var ready = loadChannels();
    if (IS_UNIT) loadInbox();
    else ready.then(loadInstructions);
    loadAssists();
    connect();
  }

  // For operators and the browser test: drop the connection and stay offline for a while (or until
  // reconnect()), then reconnect and resume, as after a network cut.
  window.eqianMessaging = {
    drop: function (ms) {
      pausedUntil = Date.now() + (ms || 0);
      if (ws) ws.close(4000, "dropped");
    },
    reconnect: function () {
      pausedUntil = 0;
      if (!ws) { attempt = 0; connect(); }
    },
    cursors: function () { return JSON.parse(JSON.stringify(state.cursors)); }
  };

  start();
})();
