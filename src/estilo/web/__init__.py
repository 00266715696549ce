"""The web app, a studio: pick or upload paintings, paint where each goes, watch, compare, keep.

``estilo web`` serves a Gradio page. Gradio is an optional extra (``pip install
'estilo[web]'``) imported only inside the functions that build or launch the page, so
``import estilo`` and ``import estilo.web`` never import it.

One concept a module:

* :mod:`~estilo.web.jobs`: the server side without Gradio: options, limits, uploads made
  upright and small, the run loop (and Continue, Enlarge), stop flags, the server's files;
* :mod:`~estilo.web.styles`: the bundled paintings (public domain, credited);
* :mod:`~estilo.web.painted`: the mask painted in the page, as the library's region mask,
  and a mask image as strokes again;
* :mod:`~estilo.web.painter`: the page's mask painter (brush, fill, eraser; ``painter.js``);
* :mod:`~estilo.web.command`: a result as the ``estilo`` commands that repeat it or take it
  to print size;
* :mod:`~estilo.web.words`: the page's words for the options and the library's messages;
* :mod:`~estilo.web.history`: this session's results;
* :mod:`~estilo.web.app`: the page (Gradio) and :func:`launch`.

Gradio's own safety features stay on (see docs/design: users.md, section 3): one job at a
time per process (``concurrency_limit=1``), a bounded queue whose position Gradio shows, and
``queue(api_open=False)`` so that the REST routes cannot skip it; the limits are checked
again inside the job; Stop, closing the tab and the time limit set a flag checked after
every step; Gradio's cache is swept, each session's files go when its tab closes, and all
of them when the server stops (SIGTERM, Ctrl-C) or, if it was killed, when the next starts.
"""

from __future__ import annotations

from .app import build_app, launch, stop_on_signals
from .jobs import GPU_OOM, UI_FIELDS, Limits, Studio, Update, coerce, long_side, ui_fields

__all__ = ["GPU_OOM", "UI_FIELDS", "Limits", "Studio", "Update", "build_app", "coerce",
           "launch", "long_side", "stop_on_signals", "ui_fields"]
