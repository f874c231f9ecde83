/* SceneLink caller-page language catalogue. Plain ES2017, no build step (CSP script-src 'self').

   The words live in /caller/static/i18n/<lang>.json, flat "key": "text" maps with {name}
   placeholders and **bold**; a force adds a language by dropping in one file (the server lists
   them at start-up and names them on <body data-languages>). The language is the caller's own
   pick on this page (kept for the tab), else the handler's choice (data-language), else the
   first of the browser's languages that has a catalogue, else the server's default. A key
   missing from a language falls back to English.

   Text is put on an element by key (data-i18n, params in data-i18n-params), so switching
   language rewrites the whole page, what caller.js put there included. Until the catalogue
   arrives (or if it cannot be fetched) the page keeps the English written in its HTML. */
(function () {
  'use strict';

  var BASE = '/caller/static/i18n/';
  var FALLBACK = 'en';
  var STORE_KEY = 'scenelink-language';
  var RETRY_MS = 5000;

  var body = document.body || document.documentElement;
  var available = (attr('data-languages') || FALLBACK).split(/\s+/).filter(Boolean);
  var handlerChoice = attr('data-language');
  var serverDefault = attr('data-default-language') || FALLBACK;
  var catalogues = {};        // lang -> strings, as fetched
  var requests = {};          // lang -> the pending or done request for it
  var retryTimer = null;
  var current = choose();
  var listeners = [];

  function attr(name) {
    var v = document.body ? document.body.getAttribute(name) : null;
    return v && v.indexOf('{{') === -1 ? v : '';
  }

  function has(lang) { return available.indexOf(lang) !== -1; }

  /* An exact tag (cy-GB), then its primary language (cy). */
  function match(tag) {
    if (!tag) return '';
    tag = String(tag).toLowerCase();
    if (has(tag)) return tag;
    var primary = tag.split('-')[0];
    return has(primary) ? primary : '';
  }

  function stored() {
    try { return window.sessionStorage ? sessionStorage.getItem(STORE_KEY) : ''; } catch (e) { return ''; }
  }

  function choose() {
    var pick = match(stored()) || match(handlerChoice);
    if (pick) return pick;
    var prefs = navigator.languages && navigator.languages.length ?
      navigator.languages : [navigator.language || navigator.userLanguage];
    for (var i = 0; i < prefs.length; i++) {
      pick = match(prefs[i]);
      if (pick) return pick;
    }
    return match(serverDefault) || FALLBACK;
  }

  function lookup(key) {
    var own = catalogues[current];
    if (own && typeof own[key] === 'string') return own[key];
    var en = catalogues[FALLBACK];
    if (en && typeof en[key] === 'string') return en[key];
    return null;
  }

  function fill(text, params) {
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
    });
  }

  /* The text of `key` in the page's language, {name} placeholders filled from `params`. */
  function t(key, params) {
    var text = lookup(key);
    return text === null ? key : fill(text, params);
  }

  /* Text with **bold** parts, as DOM nodes (never innerHTML). */
  function render(el, text) {
    while (el.firstChild) el.removeChild(el.firstChild);
    text.split('**').forEach(function (part, i) {
      if (!part) return;
      if (i % 2) {
        var strong = document.createElement('strong');
        strong.textContent = part;
        el.appendChild(strong);
      } else {
        el.appendChild(document.createTextNode(part));
      }
    });
  }

  function pageParams() {
    return { force: body.getAttribute('data-force') || '' };
  }

  /* One element's text from its keys (several keys are joined by a space). */
  function applyTo(el) {
    var keys = (el.getAttribute('data-i18n') || '').split(/\s+/).filter(Boolean);
    var params = pageParams();
    var own = el.getAttribute('data-i18n-params');
    if (own) {
      try {
        var extra = JSON.parse(own);
        Object.keys(extra).forEach(function (k) { params[k] = extra[k]; });
      } catch (e) {}
    }
    var parts = [];
    for (var i = 0; i < keys.length; i++) {
      var text = lookup(keys[i]);
      if (text === null) return;   // not fetched yet: keep what is there
      parts.push(fill(text, params));
    }
    var joined = parts.join(' ');
    if (el.tagName === 'TITLE') document.title = joined;
    else if (el.hasAttribute('data-i18n-attr')) el.setAttribute(el.getAttribute('data-i18n-attr'), joined);
    else render(el, joined);
  }

  /* Put the text of `keys` (a key, a list of keys, or '' for none) on `el`, kept in the
     language the page is shown in. */
  function put(el, keys, params) {
    if (!el) return;
    var list = Array.isArray(keys) ? keys.filter(Boolean) : (keys ? [keys] : []);
    if (!list.length) {
      el.removeAttribute('data-i18n');
      el.removeAttribute('data-i18n-params');
      el.textContent = '';
      return;
    }
    el.setAttribute('data-i18n', list.join(' '));
    if (params) el.setAttribute('data-i18n-params', JSON.stringify(params));
    else el.removeAttribute('data-i18n-params');
    applyTo(el);
  }

  function applyAll() {
    document.documentElement.setAttribute('lang', lookup('language.tag') || current);
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) applyTo(nodes[i]);
    var select = document.getElementById('language');
    if (select) select.value = current;
    listeners.forEach(function (fn) { try { fn(current); } catch (e) {} });
  }

  /* One request per language at a time; a failed one is forgotten, so it can be retried. */
  function fetchCatalogue(lang) {
    if (!requests[lang]) {
      requests[lang] = fetch(BASE + encodeURIComponent(lang) + '.json', { credentials: 'omit' })
        .then(function (r) {
          if (!r.ok) throw new Error('catalogue ' + lang + ': ' + r.status);
          return r.json();
        })
        .then(function (strings) { catalogues[lang] = strings; return strings; });
      requests[lang].catch(function () { delete requests[lang]; });
    }
    return requests[lang];
  }

  /* English and `lang`, then the page rewritten. A caller on a poor network keeps the HTML's
     English meanwhile; what could not be fetched is tried again until it arrives. */
  function load(lang) {
    var wanted = [FALLBACK];
    if (lang !== FALLBACK) wanted.push(lang);
    return Promise.all(wanted.map(function (l) {
      return fetchCatalogue(l).catch(function () { return null; });
    })).then(function () {
      applyAll();
      var missing = wanted.some(function (l) { return !catalogues[l]; });
      if (missing && !retryTimer) {
        retryTimer = setTimeout(function () {
          retryTimer = null;
          load(current);
        }, RETRY_MS);
      }
    });
  }

  /* The caller switches language on the page (kept for this tab, over the browser's). */
  function setLanguage(lang) {
    var pick = match(lang);
    if (!pick) return Promise.resolve(current);
    current = pick;
    try { if (window.sessionStorage) sessionStorage.setItem(STORE_KEY, pick); } catch (e) {}
    return load(pick).then(function () { return current; });
  }

  /* The switcher: a <select id="language">, filled with each language's own name. */
  function buildSwitcher() {
    var select = document.getElementById('language');
    var wrap = document.getElementById('language-switch');
    if (!select || available.length < 2) return;
    available.forEach(function (lang) {
      var option = document.createElement('option');
      option.value = lang;
      option.textContent = lang;
      option.setAttribute('lang', lang);
      select.appendChild(option);
      fetchCatalogue(lang).then(function (strings) {
        if (typeof strings['language.name'] === 'string') option.textContent = strings['language.name'];
      }, function () {});
    });
    select.value = current;
    select.addEventListener('change', function () { setLanguage(select.value); });
    if (wrap) wrap.removeAttribute('hidden');
  }

  var ready = load(current);

  window.SceneLinkI18n = {
    t: t,
    put: put,
    setLanguage: setLanguage,
    language: function () { return current; },
    languages: available.slice(),
    ready: ready,
    onChange: function (fn) { listeners.push(fn); }
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', buildSwitcher);
  else buildSwitcher();
})();
