"""Images in and out: decoding and checking inputs (:mod:`~estilo.io.image`,
:mod:`~estilo.io.inputs`), writing outputs atomically (:mod:`~estilo.io.output`) and the
parameters every output embeds (:mod:`~estilo.io.metadata`)."""
