"""``estilo video``: style transfer for clips, without flicker (Ruder et al. 2016).

:func:`video_job` checks a clip, the styles and the output; :meth:`VideoJob.frames` is a
generator of :class:`Frame` records (each finished frame), :meth:`VideoJob.run` paints and
encodes. Flow and masks are in :mod:`estilo.video.flow`, files in :mod:`estilo.video.media`.
Needs the ``video`` extra (PyAV and OpenCV): ``pip install 'estilo[video]'``.
"""

from .media import Clip, VideoError, open_clip
from .run import (
    FRAME_ITERATIONS,
    TEMPORAL_WEIGHT,
    Frame,
    VideoJob,
    VideoOptions,
    stylize_video,
    temporal_loss,
    video_job,
)

__all__ = ["FRAME_ITERATIONS", "TEMPORAL_WEIGHT", "Clip", "Frame", "VideoError", "VideoJob",
           "VideoOptions", "open_clip", "stylize_video", "temporal_loss", "video_job"]
