def test_bind_and_whoami(wechat_user, people, deliver, fake_wechat):
    people.add("张丽", "teacher")
    user = wechat_user("张丽")
    reply = user.say("我")
    assert "张丽" in reply.text and "教师" in reply.text
