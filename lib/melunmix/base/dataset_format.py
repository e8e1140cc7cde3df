"""What identifies the built-in generated dataset: its format name and generator version.

The one home of these two, at the bottom of the import graph: the generator
(:mod:`melunmix.synth`) writes them into each dataset's ``dataset.json``, and the data layer
(:mod:`melunmix.datasets`) reads them to tell the project's own folders from a user's, and
a dataset of an older generator from a current one, without importing the generator.
"""

#: The ``format`` field of the generator's ``dataset.json``: what tells the project's own
#: folders from a user's (which may hold a musdb ``setup.yaml`` too).
GENERATED_FORMAT = "melunmix generated dataset (MUSDB18-HQ layout)"
#: Bumped whenever a change alters the audio written for the same arguments; a dataset made
#: by another version is refused (see :func:`melunmix.synth.make_dataset`). 2: per-stem
#: stereo reverb. 3: the vocals sung by :mod:`melunmix.synth.voice` instead of a General MIDI voice
#: preset. 4: each room fed the mean of a stem's two channels (one FFT for both tails: the
#: CPU limit).
GENERATOR_VERSION = 4
