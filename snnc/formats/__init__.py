"""File and array formats every layer reads: results, event lists, N-MNIST ``.bin``, audio, checkpoints.

The lowest layer above the utilities (see the README's Layout): the compiler, the targets, the
runtime and the models all read these, and nothing here imports them. Artifacts have their own
module, :mod:`snnc.artifact`, in the same layer.
"""
