# Learner servers open in the work folder (the learner's persistent volume).
c = get_config()  # noqa: F821
c.ServerApp.root_dir = "/home/jovyan/work"
# TensorBoard through jupyter-server-proxy, at <server>/tensorboard/, reading the whole work folder.
c.ServerProxy.servers = {
    "tensorboard": {
        "command": [
            "tensorboard",
            "--logdir",
            "/home/jovyan/work",
            "--port",
            "{port}",
            "--path_prefix",
            "{base_url}tensorboard",
        ],
        "timeout": 30,
        "launcher_entry": {"title": "TensorBoard"},
    }
}
# The image ships no language servers, so jupyter-lsp would only scan for them at every start.
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
# A learner's first notebook finds its kernel already started (image/learner_kernels.py).
c.ServerApp.kernel_manager_class = "dlworkshop_learner_kernels.PrestartedKernelManager"
