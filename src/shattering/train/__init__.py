"""Training as the paper does (Section 2.1, Appendix A): the trainer and its epoch loop (``trainer``, with
``in_memory`` and ``stream`` for where the data live), packed MLP runs (``packed``), the book of a run
(``book``), its checkpoint format (``checkpoint``), augmentation, measurement, the learning-rate schedule,
the data a run trains on (``data``) and data parallelism under torchrun (``distributed``).

Training writes through the record it is handed and never imports the runs layer above it: opening,
locking and summarizing a run is :func:`shattering.runs.run`'s.
"""
