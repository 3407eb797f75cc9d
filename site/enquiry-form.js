/*! enquiry-form.js: sends an enquiry form with fetch and shows the server's answer beside each field.
 *
 *   <form method="post" action="https://api.example.com/enquiries"
 *         data-enquiry-endpoint="https://api.example.com/enquiries"> ... </form>
 *   <script src="enquiry-form.js" defer></script>
 *
 * Without JavaScript the same form posts as a plain HTML form, so keep `method` and `action`.
 * No dependencies, no build step. See docs/website.md. */
(function () {
  "use strict";

  var NETWORK_MESSAGE =
    "We could not reach our server, so your enquiry has not been sent. " +
    "Check your internet connection and try again: what you typed is still here.";
  // A failure without an answer of ours, while the browser is online: API Gateway's own 429 (which
  // carries no CORS headers, so the browser reports a network error), a proxy's 5xx page, a dropped
  // connection. Most often the service is busy for a moment.
  var BUSY_MESSAGE =
    "Our form is busy just now, so your enquiry has not been sent. " +
    "Please try again in a minute: what you typed is still here.";
  var FALLBACK_MESSAGE = "Sorry, your enquiry could not be sent. Please try again.";
  var SENT_MESSAGE = "Thank you: your enquiry has been sent.";
  // When a 429 or 503 carries no readable Retry-After (a cross-origin API must expose the header).
  var DEFAULT_WAIT_SECONDS = 10;

  function uuid() {
    var crypto = window.crypto;
    if (crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http have no randomUUID; getRandomValues works everywhere.
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (digit) {
      return (digit ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (digit / 4)))).toString(16);
    });
  }

  function retryAfterSeconds(response) {
    var header = response.headers.get("Retry-After");
    if (header == null) return DEFAULT_WAIT_SECONDS;
    var seconds = /^\d+$/.test(header) ? +header : (Date.parse(header) - Date.now()) / 1000;
    return seconds > 0 ? Math.ceil(seconds) : 0;
  }

  function enhance(form) {
    if (form.enquiryForm) return;
    form.enquiryForm = true;
    // The script shows the server's own messages beside the fields instead of the browser's bubbles.
    form.noValidate = true;

    var endpoint = form.getAttribute("data-enquiry-endpoint") || form.action;
    var buttons = [].slice.call(form.querySelectorAll("button:not([type]), [type=submit]"));
    var labels = buttons.map(function (button) {
      return button.innerHTML;
    });
    var status = form.querySelector("[data-enquiry-status]");
    var key = null; // one Idempotency-Key per filled form: kept while the content is resent unchanged
    var sentBody = null;
    var busy = false;
    var marked = [];

    if (!status) {
      status = document.createElement("div");
      status.className = "enquiry-status";
      form.appendChild(status);
    }
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");

    function say(text, state) {
      form.setAttribute("data-enquiry-state", state);
      // Emptied first, so that the same sentence said twice is announced twice.
      status.textContent = "";
      setTimeout(function () {
        status.textContent = text;
      }, 50);
    }

    function setButtons(disabled, text) {
      buttons.forEach(function (button, index) {
        button.disabled = disabled;
        if (button.nodeName === "BUTTON") {
          if (text) button.textContent = text;
          else button.innerHTML = labels[index];
        }
      });
    }

    // Re-enables the buttons now, or counts down `wait` seconds first (Retry-After).
    function release(wait) {
      var end = Date.now() + wait * 1000;
      (function tick() {
        var left = Math.ceil((end - Date.now()) / 1000);
        if (left <= 0) {
          busy = false;
          setButtons(false);
          return;
        }
        setButtons(true, "Try again in " + (left > 90 ? Math.ceil(left / 60) + " min" : left + " s"));
        setTimeout(tick, (end - Date.now()) % 1000 || 1000);
      })();
    }

    function clearErrors() {
      marked.forEach(function (mark) {
        mark.field.removeAttribute("aria-invalid");
        if (mark.describedBy) mark.field.setAttribute("aria-describedby", mark.describedBy);
        else mark.field.removeAttribute("aria-describedby");
        mark.error.textContent = "";
        mark.error.hidden = true;
      });
      marked = [];
    }

    function markField(field, text) {
      var id = (field.id || "enquiry-" + field.name) + "-error";
      var error = document.getElementById(id); // a page may place its own element with this id
      var describedBy = field.getAttribute("aria-describedby");
      if (!error) {
        var anchor = field.closest("label") || field;
        error = document.createElement("p");
        error.id = id;
        error.className = "enquiry-error";
        anchor.parentNode.insertBefore(error, anchor.nextSibling);
      }
      error.textContent = text;
      error.hidden = false;
      marked.push({ field: field, error: error, describedBy: describedBy });
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", describedBy ? id + " " + describedBy : id);
    }

    function showInvalid(reply) {
      var left = {};
      var first = null;
      Object.keys(reply.fields).forEach(function (name) {
        left[name] = reply.fields[name];
      });
      // In the form's order, so that focus goes to the first field on the page.
      [].forEach.call(form.elements, function (field) {
        var name = field.name;
        if (!Object.prototype.hasOwnProperty.call(left, name)) return;
        if (field.type === "hidden" || field.closest("[aria-hidden=true]")) return;
        markField(field, left[name]);
        delete left[name];
        first = first || field;
      });
      // Problems with fields the visitor cannot see go to the summary, with their names.
      var others = Object.keys(left).map(function (name) {
        return name + ": " + left[name];
      });
      say([reply.message || FALLBACK_MESSAGE].concat(others).join(" "), "invalid");
      if (first) first.focus();
    }

    function answer(response, reply) {
      var code = response.status;
      if (response.ok) {
        var next = form.elements._next && form.elements._next.value;
        key = sentBody = null;
        form.reset();
        release(0);
        say(reply.message || SENT_MESSAGE, "sent");
        if (next) {
          var url = new URL(next, location.href);
          if (/^https?:$/.test(url.protocol)) location.assign(url.href);
        }
        return;
      }
      release(code === 429 || code === 503 ? retryAfterSeconds(response) : 0);
      if (typeof reply.error !== "string" && (code === 429 || code >= 500)) return say(BUSY_MESSAGE, "error");
      // The key answered another enquiry (the content was changed in a way this script did not see):
      // the next send starts a new one.
      if (reply.error === "idempotency_key_reused") key = sentBody = null;
      if (code === 422 && reply.fields) return showInvalid(reply);
      var text = reply.message || FALLBACK_MESSAGE;
      say(reply.reference ? text + " Reference: " + reply.reference + "." : text, "error");
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;

      var data = {};
      new FormData(form).forEach(function (value, name) {
        if (typeof value !== "string" || value === "") return; // empty optional fields are absent
        var field = form.elements[name];
        data[name] = field && field.type === "checkbox" ? true : value;
      });
      var body = JSON.stringify(data);
      if (body !== sentBody) {
        key = uuid();
        sentBody = body;
      }

      busy = true;
      clearErrors();
      setButtons(true, "Sending…");
      say("Sending your enquiry…", "sending");
      fetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": key },
        body: body,
      }).then(
        function (response) {
          return response
            .json()
            .then(null, function () {
              return null;
            })
            .then(function (reply) {
              answer(response, reply && typeof reply === "object" ? reply : {});
            });
        },
        function () {
          // Offline: say so. Online: an answer the browser would not show us, most often API
          // Gateway's throttle (its 429 has no CORS headers), or a connection cut short.
          var offline = navigator.onLine === false;
          release(offline ? 0 : DEFAULT_WAIT_SECONDS);
          say(offline ? NETWORK_MESSAGE : BUSY_MESSAGE, "error");
        }
      );
    });
  }

  function start() {
    if (!window.fetch || !window.FormData) return; // the plain HTML form still works
    [].forEach.call(document.querySelectorAll("form[data-enquiry-endpoint]"), enhance);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
