"""Why a run stopped: the values of summary.json's `stop_reason`, defined once.

A run that stopped for good (FINAL) is done: a sweep does not train it again unless a
resumable key such as train.epochs changes; an interrupted run resumes from its checkpoint.
"""
EARLY_STOPPING = "early_stopping"      # val_acc did not improve for train.patience epochs
MAX_EPOCHS = "max_epochs"              # train.epochs were run
INTERRUPTED = "interrupted"            # Ctrl-C: resumable
NON_FINITE_LOSS = "non_finite_loss"    # the loss became NaN or infinite
RUNNING = "running"                    # summary.json written while the run goes on

FINAL = (EARLY_STOPPING, MAX_EPOCHS)
ALL = (EARLY_STOPPING, MAX_EPOCHS, INTERRUPTED, NON_FINITE_LOSS, RUNNING)
