"""Which stems a track holds, and what training mixes: MUSDB18's four stems, or mixture + vocals.

The one place of the data layer that knows the stem layouts. A MUSDB18-format song holds
its mixture and four sources (vocals, drums, bass, other: :data:`FOUR_STEMS`); a song of
mixture and vocals only (:data:`MIXTURE_AND_VOCALS`, e.g. a karaoke set or a dataset whose
accompaniment was never split) holds two files, and its accompaniment is derived as
``mixture - vocals``, exactly the MUSDB18 accompaniment when the mixture is the sum of its
stems. Training mixes a layout's :attr:`StemLayout.sources`; the accompaniment target is
the sum of :attr:`StemLayout.accompaniment`. SiSEC 2018's oracles are defined on the four
stems only, and the mixture check needs stems to sum, so both are skipped for mixture +
vocals (:attr:`StemLayout.four_sources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..base.names import ACCOMPANIMENT, ACCOMPANIMENT_SOURCES, MIXTURE, SOURCES, STEMS, VOCALS


@dataclass(frozen=True)
class StemLayout:
    """One stem layout.

    Attributes
    ----------
    name : str
        How messages and records name it.
    files : tuple of str
        The stems a song holds as files (``mixture`` first).
    sources : tuple of str
        What training mixes: the sources whose sum is the mixture (a derived
        ``accompaniment`` is a file of the cache, :func:`melunmix.datasets.prepare_tracks`).
    accompaniment : tuple of str
        The sources whose sum is the accompaniment target.
    """

    name: str
    files: tuple[str, ...]
    sources: tuple[str, ...]
    accompaniment: tuple[str, ...]

    @property
    def four_sources(self) -> bool:
        """The four MUSDB18 sources are at hand (SiSEC's oracles, the mixture check)."""
        return set(SOURCES) <= set(self.sources)

    @property
    def derived(self) -> tuple[str, ...]:
        """Sources computed from the files (``mixture - vocals``), not read from a song."""
        return tuple(source for source in self.sources if source not in self.files)


#: MUSDB18 and MUSDB18-HQ: the mixture and the four sources.
FOUR_STEMS = StemLayout("four stems", STEMS, SOURCES, ACCOMPANIMENT_SOURCES)
#: The mixture and the vocals; the accompaniment is ``mixture - vocals``.
MIXTURE_AND_VOCALS = StemLayout("mixture + vocals", (MIXTURE, VOCALS), (VOCALS, ACCOMPANIMENT), (ACCOMPANIMENT,))
#: Every layout, the most complete first.
LAYOUTS = (FOUR_STEMS, MIXTURE_AND_VOCALS)


def layout_of(present: Sequence[str], track: str, folder: Path, hint: str,
              file_names: Mapping[str, str] | None = None) -> StemLayout:
    """The layout of a song folder holding the stem files ``present``.

    ``file_names`` maps each stem to its file (the setup file's; ``<stem>.wav`` by default).

    Raises
    ------
    FileNotFoundError
        The files are neither layout's; the message names the first missing file and
        ``hint`` (how to fix the folder).
    """
    files = {stem: f"{stem}.wav" for stem in STEMS} | dict(file_names or {})
    present = set(present)
    for layout in LAYOUTS:
        if present >= set(layout.files) and not (present - set(layout.files)) & set(STEMS):
            return layout
    missing = files[next(stem for stem in STEMS if stem not in present)]
    lacks = f"track '{track}' lacks {missing} ({folder / missing})"
    if {MIXTURE, VOCALS} <= present:
        raise FileNotFoundError(
            f"{lacks}; a song of mixture + vocals holds only {files[MIXTURE]} and {files[VOCALS]}, a MUSDB18 "
            f"song all of {', '.join(files[stem] for stem in STEMS)}; {hint}")
    raise FileNotFoundError(f"{lacks}; {hint}")


def check_targets(targets: Sequence[str], layout: StemLayout, where: str) -> None:
    """Refuse a target the layout cannot give (drums of a song of mixture + vocals), in one line."""
    given = list(dict.fromkeys([*layout.sources, ACCOMPANIMENT]))
    missing = [target for target in targets if target not in given]
    if missing:
        raise ValueError(f"{where}: songs of {layout.name} have no {', '.join(missing)} to train on; "
                         f"the targets they give: {', '.join(given)}")


def common_layout(tracks: Sequence) -> StemLayout:
    """The one layout of ``tracks`` (training mixes their sources, so they must agree)."""
    layouts = {track.layout for track in tracks}
    if len(layouts) > 1:
        example = {track.layout.name: track.name for track in tracks}
        raise ValueError(
            f"the tracks mix stem layouts ({'; '.join(f'{k}: e.g. {v!r}' for k, v in example.items())}); "
            "training mixes one layout's sources: give every song the same stems"
        )
    return layouts.pop()
