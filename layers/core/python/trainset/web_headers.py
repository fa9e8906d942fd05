"""Security headers for everything trainset serves: the coders' page and the API.

One copy of the policy: the local server and the API add these headers; the CDK site
construct builds the same page policy for CloudFront (with the deployed API and sign-in
origins) and a test checks that both agree.
"""

from __future__ import annotations

# Headers every response carries, page or API.
COMMON_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# An API answer is JSON, never a document: it may load nothing and be framed by nobody.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def page_csp(connect_src: list[str], img_src: list[str]) -> str:
    """The page's policy: scripts and styles only from the page's own origin (no inline
    script, no eval), network calls only to ``connect_src``, no framing."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + " ".join(["'self'", "data:", "blob:", *img_src]),
        "connect-src " + " ".join(["'self'", *connect_src]),
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


# Locally the page, the API (/api) and the images (/blobs) share one origin.
LOCAL_PAGE_HEADERS: dict[str, str] = {
    **COMMON_HEADERS,
    "Content-Security-Policy": page_csp([], []),
}
API_HEADERS: dict[str, str] = {**COMMON_HEADERS, "Content-Security-Policy": API_CSP}
