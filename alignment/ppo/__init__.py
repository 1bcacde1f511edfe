"""KL-penalised PPO for the agent G: audio tokens and diffusion-head steps, on DeepSpeed.

core (the numerics), kl_control (beta), scoring (what PPO reads from a model), ppo_config (every
setting). `python -m alignment.ppo --help` lists the settings.
"""
