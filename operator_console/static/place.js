/* The caller's place in the forms a control room uses (grid reference, what3words, address),
   each with a copy button; the officer page also gets a "navigate" link. Shared by the console
   and the officer page: ScenePlace.render(container, fix, {navigate: true}). */
(function () {
  'use strict';

  function copy(text, button) {
    function done(label) {
      button.textContent = label;
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done('Copied'); },
        function () { done('Copy failed'); });
      return;
    }
    // No clipboard API (plain http): a hidden textarea and execCommand, else select by hand.
    var area = document.createElement('textarea');
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok ? 'Copied' : 'Select to copy');
  }

  function row(container, label, value, cls) {
    var line = document.createElement('span');
    line.className = 'place-item ' + cls;
    var name = document.createElement('span');
    name.className = 'place-label';
    name.textContent = label + ': ';
    var text = document.createElement('span');
    text.className = 'place-value';
    text.textContent = value;
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'place-copy';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy ' + label);
    button.addEventListener('click', function () { copy(value, button); });
    line.appendChild(name);
    line.appendChild(text);
    line.appendChild(button);
    container.appendChild(line);
  }

  function render(container, fix, opts) {
    if (!container) return;
    while (container.firstChild) container.removeChild(container.firstChild);
    var ok = fix && typeof fix.lat === 'number' && typeof fix.lon === 'number';
    container.hidden = !ok;
    if (!ok) return;
    var latlon = fix.lat.toFixed(6) + ', ' + fix.lon.toFixed(6);
    row(container, 'Lat/long', latlon, 'place-latlon');
    if (fix.grid_ref) row(container, 'Grid ref', fix.grid_ref, 'place-grid');
    if (fix.grid_ref_6) row(container, '6-figure', fix.grid_ref_6, 'place-grid6');
    if (fix.w3w) row(container, 'what3words', '///' + fix.w3w, 'place-w3w');
    if (fix.address) row(container, 'Address', fix.address, 'place-address');
    if (opts && opts.navigate) {
      var a = document.createElement('a');
      a.className = 'place-navigate';
      a.href = 'https://www.google.com/maps/dir/?api=1&destination=' +
        encodeURIComponent(fix.lat.toFixed(6) + ',' + fix.lon.toFixed(6));
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = 'Navigate';
      container.appendChild(a);
    }
  }

  /* A "place" feed message names its fix by received_at: merged into that fix only. */
  function merge(fix, place) {
    if (!fix || !place || fix.received_at !== place.received_at) return false;
    fix.w3w = place.w3w;
    fix.address = place.address;
    return true;
  }

  window.ScenePlace = { render: render, merge: merge };
})();
