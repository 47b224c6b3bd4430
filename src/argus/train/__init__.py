"""Training: a folder of labelled photos becomes a new, evaluated version of a classifier.

``data`` reads and checks the photos (digests, unreadable files, duplicates, leakage,
imbalance) and splits them; ``features`` embeds them with a base model's ``features`` output
(cached by image and base digest); ``head`` fits a softmax head on those vectors with numpy;
``finetune`` (the ``train`` extra: torch) trains the whole network; ``export`` writes either
result as an ordinary model package; ``report`` scores a model on held-out images and draws
the confusion matrix and curves; ``run`` puts the steps together for the CLI and the job
queue. Serving never imports the steps (only this module, for ``MODES``).
"""

MODES = ("auto", "head", "finetune")
"""How a new version is trained: ``head`` on frozen features (numpy), ``finetune`` the
whole network (torch), ``auto`` the head first and fine-tuning when it leaves room."""
