"""The paper's segmentation evaluation on real models and datasets (`python -m evaluation`):
dataset readers, the protocol, the metrics and a sharded, resumable runner on one process
or Ray actors. A research tool beside the extension: the nodes never import it."""
