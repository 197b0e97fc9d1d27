"""S5: the trainer. Retrain commands in; LoRA/QLoRA adapters with signed manifests out.
See docs/trainer.md."""
