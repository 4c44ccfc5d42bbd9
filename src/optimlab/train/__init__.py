"""Training: the ``Trainer`` loop, its callbacks, and the metrics it reports
(``optimlab.train.metrics``)."""
