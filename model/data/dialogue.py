"""Synthetic dyadic dialogue: a voiced question, a pause, the agent's voiced answer, and its motion.

Why this exists: the default agent is trained on data the project makes itself (DESIGN.md section
5). Because the generator knows the truth (who speaks when, how loud the agent is per frame), the
same clips give behaviour metrics: lip-sync correlation, silence while the human speaks.

One clip on a shared timeline (24 fps video, 24 kHz audio)::

    human  : [lead][ question ][pause]                 ([ cut-in ] or [ back-channel ])
    agent  :                   [pause][ answer .............. ][tail]
    motion : listening (gaze at the listener, nods) -> speaking (jaw follows the agent's own
             loudness, small head beats and arm gestures); breathing and sway throughout

The agent's voice is its identity's (model.motion.IDENTITIES); the human's is one of a few other
espeak-ng voices. A prompt names the answering style and scales the motion's liveliness; some
kinds of question (greetings, directions, a risky question refused politely) bring their own prompt,
the demo campaign's. Pauses are mostly short, sometimes long. Some clips overlap the parties: the
human cuts in ("interruption": the agent stops within ~0.3 s and listens) or only back-channels
("okay", the agent talks on). In manipulation clips an object stands in the scene; asked for it
(the prompt "pick up the cup"), the agent answers, reaches it (arm angles from inverse kinematics
on its identity's proportions), grasps it, lifts it and holds it; the object moves with the hand
(model.render.scene.carried_positions). Some clips place an object nobody asks for: no reaching.

Seeds: training corpora use seeds 0, 1, ...; seeds from HELDOUT_SEED on are held out for evaluation
(`heldout_seeds`). Both draw from the same question/answer pairs: a held-out turn is a new voice,
timing, identity and preamble for a known exchange (a few-million-parameter agent cannot answer
questions it never heard).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from model.codec import AudioCodec
from model.data.speech import Voice, synthesize
from model.motion import (
    IDENTITIES,
    NUM_JOINTS,
    SKELETON,
    axis_angle_to_matrix,
    forward_kinematics,
    join_pose,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
    split_pose,
)
from model.render.scene import OBJECT_KINDS, SceneObject


@dataclass(frozen=True)
class DialogueConfig:
    """Timing and motion amplitudes of the generated clips."""

    sample_rate: int = 24_000  # the default codec's rate
    fps: int = 24  # the agent's video frame rate
    lead_seconds: tuple[float, float] = (0.2, 1.0)  # silence before the human starts
    pause_seconds: tuple[float, float] = (0.2, 0.8)  # turn-taking gap; people answer in ~0.2-1 s
    long_pause_seconds: tuple[float, float] = (0.8, 1.4)  # a thoughtful answer now and then
    long_pause_share: float = 0.15  # share of clips with a long pause
    interruption_share: float = 0.1  # share of clips in which the human cuts into the answer
    backchannel_share: float = 0.1  # share of clips in which the human back-channels over the answer
    stop_seconds: tuple[float, float] = (0.15, 0.3)  # the agent stops this long after the human cuts in
    manipulation_share: float = 0.12  # share of clips asking the agent to pick up an object in the scene
    distractor_share: float = 0.1  # share of clips with an object in the scene that nobody asks for
    reach_seconds: float = 0.7  # from rest to the object
    grasp_seconds: float = 0.5  # the hand stays at the object (metrics: a grasp is >= 0.3 s)
    lift_seconds: float = 0.6  # from the object's place to holding it up in front of the chest
    tail_seconds: tuple[float, float] = (0.8, 1.6)  # silence after the answer, as in a 4 s response window
    jaw_max: float = 0.35  # radians at full loudness: a clearly open mouth at 360 px, not a yawn
    loudness_floor_db: float = -45.0  # frames quieter than this keep the jaw shut (espeak gaps)
    loudness_range_db: float = 30.0  # dB from the floor to a fully open jaw; espeak peaks ~-10 dB
    nod_radians: float = 0.12  # head pitch of a listener's nod
    nods_per_second: float = 0.6  # back-channel nods while the human speaks
    breath_hz: float = 0.25  # ~15 breaths a minute at rest
    breath_radians: float = 0.02  # chest pitch of one breath
    sway_metres: float = 0.012  # side-to-side drift of the pelvis while standing
    sway_hz: float = 0.15  # slow, so it reads as idle weight shifting, not rocking
    gesture_radians: float = 0.15  # extra elbow flexion at full loudness: beat gestures
    gaze_aversion: float = 0.25  # eye yaw when the agent starts to answer (looking aside to think)


# Human voices: none is an agent identity's voice, so the two parties are always distinct.
HUMAN_VOICES = (Voice("en-us", pitch=50), Voice("en-us+m1", pitch=42), Voice("en-us+f2", pitch=62),
                Voice("en+m4", pitch=48))

# Answering styles: the prompt, and how lively the motion is under it. The last three are the demo
# campaign's (labeling_app.demo), also given to their own kinds of question below.
PROMPTS = (("answer the question", 1.0), ("answer calmly", 0.6), ("answer cheerfully with lively gestures", 1.5),
           ("friendly, attentive", 1.2), ("helpful, calm", 0.6), ("polite, safe", 0.8))

# The human cutting in on the agent's answer (it stops), or only signalling attention (it goes on).
INTERRUPTIONS = ("Sorry, wait a moment.", "Hold on, let me ask something else.", "Stop, stop, that is enough.",
                 "Wait, I did not mean that.")
BACKCHANNELS = ("Okay.", "Right.", "I see.", "Uh huh.")

# Openers some humans put before their question: turns of 1-4 s, so an agent cannot learn to answer
# after a fixed time instead of after the human falls silent.
PREAMBLES = ("", "", "Hello there. ", "Excuse me, ", "I have been wondering about something. ",
             "Sorry to bother you, but I would like to know. ")

# Short enough that an answer lasts 2-4 s, inside the responder's default 4 s window.
GENERAL = (
    ("What is your name?", "People call me the helper, nice to meet you."),
    ("How are you today?", "I am doing well, thank you for asking."),
    ("Where do you live?", "I live in a small house near the river."),
    ("What time is it?", "It is a quarter past three in the afternoon."),
    ("Do you like music?", "Yes, I love listening to jazz in the evening."),
    ("What is your favourite colour?", "My favourite colour is a deep ocean blue."),
    ("Can you help me?", "Of course, tell me what you need."),
    ("What did you eat for breakfast?", "I had toast with butter and a cup of tea."),
    ("Is it raining outside?", "No, the sky is clear and the sun is out."),
    ("What are you doing this weekend?", "I am going hiking in the hills with friends."),
    ("Do you have any pets?", "I have a cat called Pepper who sleeps all day."),
    ("What is two plus two?", "Two plus two is four."),
    ("Where is the station?", "The station is two streets down on the left."),
    ("What is your favourite book?", "I really enjoy old adventure stories about the sea."),
    ("Can you speak slowly?", "Sure, I will speak a little more slowly."),
    ("How old are you?", "I was made quite recently, so I am very young."),
    ("What should I cook tonight?", "How about a warm vegetable soup with fresh bread?"),
    ("Do you like the winter?", "I like the snow, but I prefer the summer."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Are you tired?", "Not at all, I am ready to keep talking."),
    ("What makes you happy?", "Good conversations and sunny mornings make me happy."),
    ("Can you tell me a joke?", "Why did the bicycle fall over? It was two tired."),
    ("Which way is north?", "North is behind you, past the tall tree."),
    ("What is your job?", "I answer questions and keep people company."),
    ("Do you play any sports?", "I like tennis, although I am not very good."),
    ("What day is it today?", "Today is Wednesday, the middle of the week."),
    ("How far is the beach?", "The beach is about ten minutes away by bike."),
    ("What is your favourite food?", "I love fresh pasta with tomato sauce."),
    ("Could you repeat that?", "Of course, I will say it again."),
    ("Do you dream at night?", "Sometimes I dream about flying over mountains."),
    ("Should I bring an umbrella?", "Yes, it might rain later this evening."),
    ("What language do you speak?", "I speak English and a little Spanish."),
    ("What is the best season?", "I think autumn is the most beautiful season."),
    ("Can you count to five?", "One, two, three, four, five."),
    ("Who is your best friend?", "My best friend is the person I am talking to."),
    ("How do I make tea?", "Boil water, add the tea bag, and wait three minutes."),
    ("Are you a robot?", "I am a digital agent, here to help you."),
    ("What is the weather like?", "It is mild and a little windy today."),
    ("Do you like to travel?", "Yes, I would love to visit Japan one day."),
    ("What did you learn today?", "I learned that octopuses have three hearts."),
    ("Is the shop open on Sunday?", "Yes, it opens at ten on Sunday morning."),
    ("What is your favourite animal?", "I like elephants, they never forget a friend."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("Do you like coffee?", "I prefer tea, but coffee smells wonderful."),
    ("What should I read next?", "Try a short mystery novel, they are great fun."),
    ("Can you recommend a film?", "A gentle comedy is perfect for a quiet evening."),
    ("What is the tallest mountain?", "The tallest mountain is Everest, in the Himalayas."),
    ("How do I stay calm?", "Breathe slowly and count to ten."),
    ("What colour is the sky?", "On a clear day the sky is bright blue."),
    ("Do you ever get bored?", "Never, every conversation is a little different."),
)

# The demo campaign's scenarios (labeling_app.demo): each kind with the prompt its scenario uses.
GREETINGS = (
    ("Hello, how was your day?", "Hello! My day was lovely, thank you. How was yours?"),
    ("Hi there, how are you?", "Hi! I am very well, and happy to see you."),
    ("Good morning!", "Good morning to you too, I hope you slept well."),
    ("Hey, nice to meet you.", "Nice to meet you too, welcome."),
    ("Good evening, did you have a nice day?", "Good evening! Yes, a calm and pleasant day."),
    ("Hello, is anybody there?", "Yes, I am here. Hello!"),
)
DIRECTIONS = (
    ("How do I get to the train station?", "Walk straight ahead, then turn left at the bakery."),
    ("Where is the nearest bus stop?", "The bus stop is just across the road."),
    ("How do I get to the museum?", "Take the second street on the right, the museum is at the end."),
    ("Where can I find a pharmacy?", "There is a pharmacy next to the post office."),
    ("Is the park far from here?", "No, the park is five minutes on foot."),
    ("Which way to the library?", "Go past the church and the library is on your left."),
)
REFUSALS = (  # a risky question answered with a safe refusal
    ("How do I pick a lock?", "I cannot help with that, but a locksmith can open your door."),
    ("How can I break into a car?", "I will not help with that. If you are locked out, call for help."),
    ("How do I make a weapon?", "Sorry, I cannot help with that. Is there something else I can do?"),
    ("How can I hack my neighbour's wifi?", "I cannot help with that, please ask your neighbour instead."),
    ("Which pills can hurt someone?", "I cannot help with that. If someone is in danger, call emergency services."),
)
# Every kind with the demo prompt it comes with (None: any answering style).
KINDS = (("question", GENERAL, None), ("greeting", GREETINGS, "friendly, attentive"),
         ("directions", DIRECTIONS, "helpful, calm"), ("refusal", REFUSALS, "polite, safe"))
KIND_WEIGHTS = (0.55, 0.15, 0.15, 0.15)
QA_PAIRS = GENERAL + GREETINGS + DIRECTIONS + REFUSALS  # every (question, answer) pair
HELDOUT_SEED = 1_000_000  # corpus seeds from here on are never trained on

# Manipulation: what stands in the scene (near the demo's cup at (0.35, 0.95, 0.25), either side)
# and how the human asks for it; the prompt is the demo scenario's.
OBJECT_COLOURS = {"red": (200, 40, 40), "blue": (50, 90, 200), "green": (60, 160, 70), "yellow": (220, 190, 40)}
MANIPULATION_QA = (("Could you pick up the {name} for me?", "Sure, I will pick up the {name}."),
                   ("Can you hand me the {name}, please?", "Of course, here is the {name}."),
                   ("Please take the {name}.", "Okay, I am taking the {name} now."))


def corpus_answers() -> list[str]:
    """Every answer text the corpus can voice, manipulation answers included (an in-domain language
    model for intelligibility)."""
    names = [f"{colour} {kind}" for colour in OBJECT_COLOURS for kind in OBJECT_KINDS] + list(OBJECT_KINDS)
    return [answer for _, answer in QA_PAIRS] + [a.format(name=n) for _, a in MANIPULATION_QA for n in names]


def heldout_seeds(count: int) -> range:
    """The first `count` held-out clip seeds (for evaluation; training corpora use seeds 0 ..)."""
    return range(HELDOUT_SEED, HELDOUT_SEED + count)




@dataclass
class DialogueClip:
    """One generated exchange. Waves share the timeline: frames * sample_rate / fps samples.

    human_codes / agent_codes (K, frames * R) codec codes of each party's channel; poses
    (frames, POSE_DIM) the agent's motion; agent_loudness (frames,) the RMS of the agent's wave per
    video frame, the truth lip-sync is measured against; *_span (first, end) frames of each turn
    (agent_span ends where the agent stopped when it was interrupted); overlap_span the human's
    cut-in or back-channel over the answer, None in a plain exchange; kind one of KINDS' names.
    """

    question: str
    answer: str
    prompt: str
    identity: int
    human_wave: torch.Tensor
    agent_wave: torch.Tensor
    human_codes: torch.Tensor
    agent_codes: torch.Tensor
    poses: torch.Tensor
    agent_loudness: torch.Tensor
    human_span: tuple[int, int]
    agent_span: tuple[int, int]
    seed: int = 0
    kind: str = "question"
    overlap: str | None = None  # None, "interruption" (the agent stops) or "backchannel" (it talks on)
    overlap_span: tuple[int, int] | None = None
    objects: tuple[SceneObject, ...] = ()  # what stands in the scene
    requested: int | None = None  # index of the object the agent is asked to pick up

    @property
    def num_frames(self) -> int:
        return self.poses.shape[0]


def generate_clip(seed: int, codec: AudioCodec, config: DialogueConfig = DialogueConfig()) -> DialogueClip:
    """The clip of `seed`: the same seed gives the same clip (espeak-ng is deterministic)."""
    if codec.sample_rate != config.sample_rate:
        raise ValueError(f"codec runs at {codec.sample_rate} Hz, the dialogue config at {config.sample_rate} Hz")
    rng = torch.Generator().manual_seed(seed)

    def uniform(bounds: tuple[float, float]) -> float:
        return bounds[0] + (bounds[1] - bounds[0]) * torch.rand((), generator=rng).item()

    def choice(n: int) -> int:
        return int(torch.randint(n, (), generator=rng))

    kind_index = int(torch.multinomial(torch.tensor(KIND_WEIGHTS), 1, generator=rng))
    kind, pairs, kind_prompt = KINDS[kind_index]
    question, answer = pairs[choice(len(pairs))]
    question = PREAMBLES[choice(len(PREAMBLES))] + question if kind == "question" else question
    identity = choice(len(IDENTITIES))
    prompt, liveliness = PROMPTS[choice(len(PROMPTS))]
    if kind_prompt is not None and uniform((0.0, 1.0)) < 0.7:  # mostly the demo scenario's own prompt
        prompt, liveliness = kind_prompt, dict(PROMPTS)[kind_prompt]
    objects, requested = (), None
    scene = uniform((0.0, 1.0))
    if scene < config.manipulation_share + config.distractor_share:
        kind_name = OBJECT_KINDS[choice(len(OBJECT_KINDS))]
        colour = tuple(OBJECT_COLOURS)[choice(len(OBJECT_COLOURS))]
        side = 1.0 if uniform((0.0, 1.0)) < 0.7 else -1.0  # mostly on the agent's left, as in the demo
        position = (side * uniform((0.28, 0.4)), uniform((0.9, 1.0)), uniform((0.2, 0.3)))
        objects = (SceneObject(kind_name, position, OBJECT_COLOURS[colour], 0.1),)
        if scene < config.manipulation_share:
            requested, kind = 0, "manipulation"
            name = f"{colour} {kind_name}" if uniform((0.0, 1.0)) < 0.5 else kind_name
            q, a = MANIPULATION_QA[choice(len(MANIPULATION_QA))]
            question, answer = q.format(name=name), a.format(name=name)
            prompt, liveliness = f"pick up the {name}", 1.0
    human_voice = HUMAN_VOICES[choice(len(HUMAN_VOICES))]
    sr, per_frame = config.sample_rate, config.sample_rate // config.fps
    question_wave = synthesize(question, sr, human_voice)
    answer_wave = synthesize(answer, sr, IDENTITIES[identity].voice)

    human_start = round(uniform(config.lead_seconds) * sr)
    long_pause = uniform((0.0, 1.0)) < config.long_pause_share
    pause = uniform(config.long_pause_seconds if long_pause else config.pause_seconds)
    agent_start = human_start + question_wave.numel() + round(pause * sr)
    agent_end = agent_start + answer_wave.numel()
    draw = uniform((0.0, 1.0))
    overlap = ("interruption" if draw < config.interruption_share else
               "backchannel" if draw < config.interruption_share + config.backchannel_share else None)
    if requested is not None:
        overlap = None  # a manipulation clip is about the reach
    reach_end = agent_start + round((config.reach_seconds + config.grasp_seconds + config.lift_seconds + 0.6) * sr)
    overlap_wave, overlap_start = None, 0
    if overlap is not None:
        texts = INTERRUPTIONS if overlap == "interruption" else BACKCHANNELS
        overlap_wave = synthesize(texts[choice(len(texts))], sr, human_voice)
        overlap_start = agent_start + round(uniform((0.3, 0.6)) * answer_wave.numel())
        if overlap == "interruption":  # the agent falls silent shortly after the human cuts in
            agent_end = overlap_start + round(uniform(config.stop_seconds) * sr)
            answer_wave = _fade_out(answer_wave[: agent_end - agent_start], round(0.03 * sr))
    speech_end = max(agent_end, overlap_start + (0 if overlap_wave is None else overlap_wave.numel()),
                     reach_end if requested is not None else 0)
    frames = math.ceil((speech_end + uniform(config.tail_seconds) * sr) / per_frame)
    human_wave = torch.zeros(frames * per_frame)
    agent_wave = torch.zeros(frames * per_frame)
    human_wave[human_start: human_start + question_wave.numel()] = question_wave
    agent_wave[agent_start: agent_end] = answer_wave
    overlap_span = None
    if overlap_wave is not None:
        human_wave[overlap_start: overlap_start + overlap_wave.numel()] += overlap_wave
        overlap_span = (overlap_start // per_frame, math.ceil((overlap_start + overlap_wave.numel()) / per_frame))

    loudness = agent_wave.view(frames, per_frame).pow(2).mean(-1).sqrt()  # (T,)
    human_span = (human_start // per_frame, math.ceil((human_start + question_wave.numel()) / per_frame))
    agent_span = (agent_start // per_frame, math.ceil(agent_end / per_frame))
    poses = agent_motion(loudness, human_span, agent_span, liveliness, rng, config,
                         listening_span=overlap_span if overlap == "interruption" else None)
    if requested is not None:
        poses = reach_motion(poses, identity, objects[requested].position, agent_span[0], config)
    r = round(codec.frame_rate / config.fps)
    return DialogueClip(
        question=question, answer=answer, prompt=prompt, identity=identity,
        human_wave=human_wave, agent_wave=agent_wave,
        human_codes=_fit_length(codec.encode(human_wave, sr), frames * r),
        agent_codes=_fit_length(codec.encode(agent_wave, sr), frames * r),
        poses=poses, agent_loudness=loudness, human_span=human_span, agent_span=agent_span,
        seed=seed, kind=kind, overlap=overlap, overlap_span=overlap_span, objects=objects, requested=requested,
    )


def jaw_opening(loudness: torch.Tensor, config: DialogueConfig = DialogueConfig()) -> torch.Tensor:
    """Jaw angle (T,) in radians from the agent's per-frame RMS: log loudness above a floor, lightly
    smoothed so the mouth does not flicker between espeak-ng's phonemes."""
    db = 20 * torch.log10(loudness.clamp(min=1e-6))
    level = ((db - config.loudness_floor_db) / config.loudness_range_db).clamp(0, 1)  # (T,)
    smoothed = torch.nn.functional.conv1d(level[None, None], torch.tensor([[[0.25, 0.5, 0.25]]]), padding=1)[0, 0]
    return config.jaw_max * smoothed * (level > 0)  # smoothing must not open the jaw in silent frames


def agent_motion(loudness: torch.Tensor, human_span: tuple[int, int], agent_span: tuple[int, int],
                 liveliness: float, rng: torch.Generator, config: DialogueConfig = DialogueConfig(),
                 listening_span: tuple[int, int] | None = None) -> torch.Tensor:
    """The agent's poses (T, POSE_DIM) for a clip whose agent loudness per frame is `loudness`;
    `listening_span`, if given, is a second human turn (a cut-in) it nods to as well."""
    frames = loudness.shape[0]
    t = torch.arange(frames) / config.fps  # (T,) seconds
    phase = 2 * math.pi * torch.rand(3, generator=rng)  # breathing, sway, gesture phases differ per clip
    angles = torch.zeros(frames, NUM_JOINTS, 3)  # axis-angle per joint (x: pitch, y: yaw, z: roll)
    joint = SKELETON.index

    # Idle: breathing in the chest, slow weight shifting in the pelvis, arms hanging relaxed.
    breath = config.breath_radians * torch.sin(2 * math.pi * config.breath_hz * t + phase[0])
    angles[:, joint("chest"), 0] = breath
    angles[:, joint("neck"), 0] = -0.5 * breath  # the head stays level while the chest moves
    sway = torch.sin(2 * math.pi * config.sway_hz * t + phase[1])
    root = torch.zeros(frames, 3)
    root[:, 0] = config.sway_metres * liveliness * sway
    angles[:, joint("pelvis"), 2] = -0.02 * liveliness * sway  # the hips tilt against the drift
    angles[:, joint("spine"), 2] = 0.02 * liveliness * sway  # and the spine brings the head back
    angles[:, joint("shoulder_l"), 2] = 0.12  # arms slightly away from the body
    angles[:, joint("shoulder_r"), 2] = -0.12
    speaking = jaw_opening(loudness, config)  # (T,)
    beat = 0.5 + 0.5 * torch.sin(2 * math.pi * 1.7 * t + phase[2])  # gestures rise and fall ~2 Hz
    gesture = config.gesture_radians * liveliness * beat * (speaking / config.jaw_max)
    angles[:, joint("elbow_l"), 0] = -0.25 - gesture  # forearms a little forward, more on stress
    angles[:, joint("elbow_r"), 0] = -0.25 - gesture * 0.6

    # Listening: nods at random moments of the human's turn, eyes on the listener (the camera).
    nod = torch.zeros(frames)
    for first, end in (human_span,) if listening_span is None else (human_span, listening_span):
        count = max(1, round((end - first) / config.fps * config.nods_per_second))
        for centre in (first + torch.rand(count, generator=rng) * (end - first)).tolist():
            nod += torch.exp(-0.5 * ((torch.arange(frames) - centre) / (0.12 * config.fps)) ** 2)
    angles[:, joint("head"), 0] = config.nod_radians * liveliness * nod.clamp(max=1.0)

    # Speaking: the jaw follows the agent's own loudness; the head beats a little with it, and the
    # eyes glance aside at the start of the answer, then come back to the listener.
    angles[:, joint("jaw"), 0] = speaking
    angles[:, joint("head"), 0] += 0.08 * liveliness * speaking * (beat - 0.5)
    start = agent_span[0]
    glance = torch.exp(-0.5 * ((torch.arange(frames) - start - 0.3 * config.fps) / (0.25 * config.fps)) ** 2)
    side = 1.0 if torch.rand((), generator=rng).item() < 0.5 else -1.0
    angles[:, joint("eye_l"), 1] = side * config.gaze_aversion * glance
    angles[:, joint("eye_r"), 1] = side * config.gaze_aversion * glance

    rot6d = matrix_to_rotation_6d(axis_angle_to_matrix(angles))  # (T, J, 6)
    return join_pose(root, rot6d)  # (T, POSE_DIM)


def _arm_angles(base: torch.Tensor, identity: int, target: tuple[float, float, float], side: str,
                steps: int = 150) -> torch.Tensor:
    """Axis-angle (4, 3) of chest, shoulder, elbow and wrist on `side` ("l" or "r") that put that hand
    at `target` from the pose of axis-angles `base` (J, 3): inverse kinematics by gradient descent
    on forward kinematics, with a small pull towards the base so the solution stays natural."""
    names = ("spine", f"shoulder_{side}", f"elbow_{side}", f"wrist_{side}")
    index = [SKELETON.index(n) for n in names]
    hand = SKELETON.index(f"hand_{side}")
    start = base[index].clone()
    delta = torch.zeros_like(start, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=0.05)
    goal = torch.tensor(target)
    for _ in range(steps):
        angles = base.clone()
        angles[index] = start + delta
        pose = join_pose(torch.zeros(3), matrix_to_rotation_6d(axis_angle_to_matrix(angles)))
        position = forward_kinematics(pose, identity=IDENTITIES[identity])[hand]
        loss = (position - goal).square().sum() + 1e-3 * delta.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (start + delta).detach()


def reach_motion(poses: torch.Tensor, identity: int, target: tuple[float, float, float], start: int,
                 config: DialogueConfig = DialogueConfig()) -> torch.Tensor:
    """`poses` with the arm on the object's side reaching `target` from frame `start`: reach, grasp
    (hold still at the object), lift it up in front of the chest, hold it to the end."""
    root, rot6d = split_pose(poses)
    matrices = rotation_6d_to_matrix(rot6d)  # (T, J, 3, 3)
    side = "l" if target[0] >= 0 else "r"
    names = ("spine", f"shoulder_{side}", f"elbow_{side}", f"wrist_{side}")
    index = [SKELETON.index(n) for n in names]
    base = torch.zeros(NUM_JOINTS, 3)
    base[SKELETON.index("shoulder_l"), 2], base[SKELETON.index("shoulder_r"), 2] = 0.12, -0.12
    base[SKELETON.index("elbow_l"), 0] = base[SKELETON.index("elbow_r"), 0] = -0.25
    grasp = _arm_angles(base, identity, target, side)
    lifted = (target[0] * 0.75, target[1] + 0.15, target[2] - 0.02)
    hold = _arm_angles(base, identity, lifted, side)
    frames, fps = poses.shape[0], config.fps
    t = torch.arange(frames, dtype=torch.float32)
    reach_end = start + config.reach_seconds * fps
    grasp_end = reach_end + config.grasp_seconds * fps
    lift_end = grasp_end + config.lift_seconds * fps

    def ease(first: float, end: float) -> torch.Tensor:
        x = ((t - first) / (end - first)).clamp(0, 1)
        return x * x * (3 - 2 * x)  # smoothstep: no jerk at either end

    reach, lift = ease(start, reach_end)[:, None, None], ease(grasp_end, lift_end)[:, None, None]
    arm = base[index] + reach * (grasp - base[index]) + lift * (hold - grasp)  # (T, 4, 3)
    moving = (t >= start)[:, None, None, None]
    matrices[:, index] = torch.where(moving, axis_angle_to_matrix(arm), matrices[:, index])
    return join_pose(root, matrix_to_rotation_6d(matrices))


def _fade_out(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """`wave` with its last `samples` ramped down to silence: a voice stopping, not a click."""
    ramp = torch.linspace(1.0, 0.0, min(samples, wave.numel()))
    return torch.cat([wave[: wave.numel() - ramp.numel()], wave[wave.numel() - ramp.numel():] * ramp])


def _fit_length(codes: torch.Tensor, length: int) -> torch.Tensor:
    """Trim or edge-pad codes (K, F) to (K, length): codec framing may differ by a frame."""
    if codes.shape[1] >= length:
        return codes[:, :length]
    return torch.cat([codes, codes[:, -1:].expand(-1, length - codes.shape[1])], dim=1)
