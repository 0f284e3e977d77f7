"""Input channels, one module per platform: rest.py (REST), webchat.py (socket.io, the web
widget), wechat.py (Official Account), wecom.py (WeCom).

limits.py holds the one bound on what a user may send, which every channel applies before
anything reaches NLU; wechat_protocol.py holds the pure wire format (signatures, AES, XML),
render.py turns bot messages into WeChat text, wechat_api.py is the customer-service API
client and store.py the SQL state the channels share across processes.
"""
