"""Loss landscapes of trained networks (Goodfellow, Vinyals and Saxe, ICLR 2015; Im, Tao and Branson 2016; Li, Xu,
Taylor, Studer and Goldstein, NeurIPS 2018): points and filter-normalized directions in weight space
(:mod:`.directions`), the loss and accuracy at many points evaluated together (:mod:`.evaluate`), and the slices
(:mod:`.slices`): the line between two points, a plane of two directions, the barrier between two solutions, and
a training trajectory projected on its principal directions. The maths only: loading runs and data is
:mod:`shattering.experiments.landscape`'s.
"""
