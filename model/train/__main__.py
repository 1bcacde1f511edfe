"""python -m model.train --stage audio|audiovisual --out DIR [--init CKPT] [--ranks 2] [--zero_stage 2] [Trainer flags]"""

import sys

from model.train.sft import main

if __name__ == "__main__":
    sys.exit(main())
