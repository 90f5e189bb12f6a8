#!/usr/bin/env python3
"""PyTorch references for GoogLeNet inference and PyramidNet-110 training throughput, defined
here exactly as specs/googlenet.dsl and specs/pyramidnet-110-a48.dsl describe them (so the
comparison needs no torchvision). Usage: ref_models.py googlenet|pyramidnet BATCH [STEPS]

MobileNetV2 as torchvision.models.mobilenet_v2 builds it (specs/mobilenet-v2.dsl; 3,504,872
parameters), and its CIFAR form (32x32 input, the stem and the second stage at stride 1, 10
classes: compare.sh derives that spec from specs/mobilenet-v2.dsl the same way):
    ref_models.py mobilenetv2 BATCH [STEPS]        inference, 224x224
    ref_models.py mobilenetv2-cifar BATCH [STEPS]  a training step (SGD with momentum)
print one JSON line per PyTorch eager memory format (NCHW, channels_last), as peers.py does."""
import os, sys, time, torch, torch.nn as nn, torch.nn.functional as F

class Inception(nn.Module):
    def __init__(self, cin, c1, r3, c3, r5, c5, pp):
        super().__init__()
        cr = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU(inplace=True))
        self.b1 = cr(cin, c1, 1)
        self.b2 = nn.Sequential(cr(cin, r3, 1), cr(r3, c3, 3))
        self.b3 = nn.Sequential(cr(cin, r5, 1), cr(r5, c5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), cr(cin, pp, 1))
    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

def googlenet():
    cr = lambda i, o, k, s=1: [nn.Conv2d(i, o, k, s, k // 2), nn.ReLU(inplace=True)]
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
    L = cr(3, 64, 7, 2) + [pool()] + cr(64, 64, 1) + cr(64, 192, 3) + [pool()]
    L += [Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64), pool()]
    L += [Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
          Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
          Inception(528, 256, 160, 320, 32, 128, 128), pool()]
    L += [Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128)]
    L += [nn.AvgPool2d(7, 1), nn.Dropout(0.4), nn.Flatten(), nn.Linear(1024, 1000)]
    return nn.Sequential(*L)

class Basic(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin); self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes); self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.down = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else None
    def forward(self, x):
        y = self.bn3(self.conv2(F.relu(self.bn2(self.conv1(self.bn1(x))))))
        s = self.down(x) if self.down is not None else x
        if y.shape[1] != s.shape[1]:
            s = torch.cat([s, s.new_zeros(s.shape[0], y.shape[1] - s.shape[1], s.shape[2], s.shape[3])], 1)
        return y + s

def pyramidnet(depth=110, alpha=48, classes=10):
    n = (depth - 2) // 6
    add = alpha / (3 * n)
    L = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin, width = 16, 16.0
    for stage in range(3):
        for u in range(n):
            width += add
            planes = int(round(width))
            L.append(Basic(cin, planes, 2 if stage > 0 and u == 0 else 1))
            cin = planes
    L += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AvgPool2d(8), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*L)

def mobilenet_v2(classes=1000, cifar=False):
    def cbr(i, o, k, s, g=1):
        return [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True)]
    class InvertedResidual(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            layers = cbr(i, h, 1, 1) if t != 1 else []
            layers += cbr(h, h, 3, s, h) + [nn.Conv2d(h, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o)]
            self.conv = nn.Sequential(*layers)
            self.residual = s == 1 and i == o
        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)
    rows = [(1, 16, 1, 1), (6, 24, 2, 1 if cifar else 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]
    L = cbr(3, 32, 3, 1 if cifar else 2)
    i = 32
    for t, c, n, s in rows:
        for k in range(n):
            L.append(InvertedResidual(i, c, s if k == 0 else 1, t))
            i = c
    L += cbr(i, 1280, 1, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, classes)]
    return nn.Sequential(*L)

def mobilenet_peers(what, batch, steps):
    """torch eager, NCHW and channels_last: JSON lines as peers.py prints them."""
    import json
    cifar = what == "mobilenetv2-cifar"
    torch.manual_seed(0); torch.set_num_threads(os.cpu_count())
    m = mobilenet_v2(10 if cifar else 1000, cifar)
    x = torch.randn(batch, 3, 32 if cifar else 224, 32 if cifar else 224)
    y = torch.randint(0, 10 if cifar else 1000, (batch,))
    def timeit(fn, warm=2):
        for _ in range(warm): fn()
        t = time.perf_counter()
        for _ in range(steps): fn()
        return (time.perf_counter() - t) / steps
    for fmt in ("nchw", "channels_last"):
        mf = m.to(memory_format=torch.channels_last) if fmt == "channels_last" else m
        xf = x.contiguous(memory_format=torch.channels_last) if fmt == "channels_last" else x
        row = dict(model=what, batch=batch, peer=f"torch-eager-{fmt}")
        if cifar:
            mf.train()
            opt = torch.optim.SGD(mf.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            lossf = nn.CrossEntropyLoss()
            def step():
                opt.zero_grad(); lossf(mf(xf), y).backward(); opt.step()
            row["train_ips"] = batch / timeit(step)
        else:
            mf.eval()
            with torch.no_grad():
                row["infer_ips"] = batch / timeit(lambda: mf(xf))
        print(json.dumps(row), flush=True)

def main():
    what = sys.argv[1]; batch = int(sys.argv[2]); steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    if what.startswith("mobilenetv2"):
        return mobilenet_peers(what, batch, steps)
    torch.manual_seed(0)
    if what == "googlenet":
        m = googlenet().eval(); x = torch.randn(batch, 3, 224, 224)
        with torch.no_grad():
            for _ in range(2): m(x)
            t = time.perf_counter()
            for _ in range(steps): m(x)
            ips = batch * steps / (time.perf_counter() - t)
        print(f"torch {torch.__version__} threads={torch.get_num_threads()} googlenet batch={batch}: inference {ips:.1f} img/s "
              f"params={sum(p.numel() for p in m.parameters())}")
    else:
        m = pyramidnet(); x = torch.randn(batch, 3, 32, 32); y = torch.randint(0, 10, (batch,))
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        lossf = nn.CrossEntropyLoss()
        def step():
            opt.zero_grad(); lossf(m(x), y).backward(); opt.step()
        for _ in range(2): step()
        t = time.perf_counter()
        for _ in range(steps): step()
        ips = batch * steps / (time.perf_counter() - t)
        print(f"torch {torch.__version__} threads={torch.get_num_threads()} pyramidnet-110 batch={batch}: train {ips:.1f} img/s "
              f"params={sum(p.numel() for p in m.parameters())}")

if __name__ == "__main__":
    main()
