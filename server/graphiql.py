"""GraphiQL's page, with its assets from a configurable place and a way out when they fail.

Strawberry's page loads React and GraphiQL from unpkg.com; on an air-gapped site it would stay
a blank "Loading...". Here the asset base can point at a mirror (same layout as unpkg, so the
pinned versions and their integrity hashes still apply), and a small script, run before any
asset, replaces the blank page with an explanation and links when they do not load.
"""

from __future__ import annotations

import json

from strawberry.http.ides import get_graphql_ide_html

__all__ = ["DEFAULT_ASSETS_URL", "SCHEMA_PATH", "graphiql_page"]

DEFAULT_ASSETS_URL = "https://unpkg.com"
SCHEMA_PATH = "/graphql/schema.graphql"
# Seconds without GraphiQL before the page explains itself (a blackholed network never fails).
_PATIENCE_SECONDS = 15

_FALLBACK = """
    <style>
      #graphiql-offline { margin: 3rem auto; max-width: 40rem; padding: 0 1rem;
        font: 15px/1.5 system-ui, sans-serif; color: #1d2330; }
      #graphiql-offline code { background: #eef0f4; padding: 0 .25rem; }
    </style>
    <script>
      (function () {
        var assets = __ASSETS__, schema = __SCHEMA__, patience = __PATIENCE__;
        var explained = false;
        function line(parts) {
          var p = document.createElement("p");
          parts.forEach(function (part) {
            if (typeof part === "string") { p.appendChild(document.createTextNode(part)); return; }
            var node = document.createElement(part[0]);
            node.textContent = part[1];
            if (part[0] === "a") node.href = part[1];
            p.appendChild(node);
          });
          return p;
        }
        function explain() {
          if (explained) return;
          explained = true;
          var show = function () {
            var box = document.getElementById("graphiql");
            var note = document.createElement("div");
            note.id = "graphiql-offline";
            var title = document.createElement("h1");
            title.textContent = "GraphiQL could not load";
            note.appendChild(title);
            note.appendChild(line(["Its scripts come from ", ["code", assets],
              " and did not load: this machine may have no access to it. An operator can point ",
              ["code", "LAIN_CONSOLE_GRAPHIQL_ASSETS_URL"], " at a mirror."]));
            note.appendChild(line(["The live status page works offline: ", ["a", "/ui/"]]));
            note.appendChild(line(["The schema (SDL): ", ["a", schema],
              " (with access control on, send a token)"]));
            note.appendChild(line(["The API itself answers: POST GraphQL to ", ["code", "/graphql"],
              "."]));
            box.replaceChildren(note);
          };
          if (document.getElementById("graphiql")) show();
          else document.addEventListener("DOMContentLoaded", show);
        }
        // A script that fails to load fires "error" on its element; it does not bubble, but
        // a capturing listener on the window sees it.
        window.addEventListener("error", function (event) {
          if (event.target && event.target.tagName === "SCRIPT") explain();
        }, true);
        window.addEventListener("load", function () { if (!window.GraphiQL) explain(); });
        setTimeout(function () { if (!window.GraphiQL) explain(); }, patience * 1000);
      })();
    </script>
"""


def _script_literal(value: str) -> str:
    """A JS string literal that cannot end the <script> element it sits in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def graphiql_page(assets_url: str = DEFAULT_ASSETS_URL) -> str:
    page = get_graphql_ide_html(graphql_ide="graphiql")
    # A Strawberry upgrade that changes where assets come from must not pass unnoticed.
    if f'src="{DEFAULT_ASSETS_URL}/' not in page or "<head>" not in page:
        raise RuntimeError("Strawberry's GraphiQL page no longer loads its assets from unpkg.com")
    base = assets_url.rstrip("/")
    page = page.replace(f'="{DEFAULT_ASSETS_URL}/', f'="{base}/')
    fallback = (
        _FALLBACK.replace("__ASSETS__", _script_literal(base))
        .replace("__SCHEMA__", _script_literal(SCHEMA_PATH))
        .replace("__PATIENCE__", str(_PATIENCE_SECONDS))
    )
    return page.replace("<head>", "<head>" + fallback, 1)
