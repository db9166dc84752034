"""What drives training: the console command (cli) and experiment logging (TensorBoard, MLflow)."""
